"""bench/postgres.sh's data step: the vectors `snapembed bench-search` wrote for the mapped index
(mixtures of really embedded texts, see src/cli/bench_search.rs) as COPY BINARY files for the
PostgreSQL tables, and the exact top-10 chunk rows of every query.

Usage: postgres_load.py DIR  (reads vectors.f32, chunk_doc.u32, queries.f32; writes
documents.copy, chunks.copy, exact.json)

Exact search is over the vectors rounded to float16, as the halfvec column stores them, so
recall measures the HNSW graph, not the rounding.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np

DIMS = 384
CATEGORIES = ["account", "billing", "data", "forms", "integrations", "security", "teams", "payments"]
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def mix(x):
    """splitmix64 as bench_search.rs's `mix`, on a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)


def field(dtype_bytes):
    """A fixed-width binary COPY field: int32 length, then the bytes."""
    return [("len", ">i4"), ("v", dtype_bytes)]


def main():
    out = Path(sys.argv[1])
    vectors = np.fromfile(out / "vectors.f32", dtype="<f4").reshape(-1, DIMS)
    chunk_doc = np.fromfile(out / "chunk_doc.u32", dtype="<u4")
    queries = np.fromfile(out / "queries.f32", dtype="<f4").reshape(-1, DIMS)
    n_chunks, n_docs = len(vectors), int(chunk_doc.max()) + 1
    assert len(chunk_doc) == n_chunks
    category = (mix(np.arange(n_docs, dtype=np.uint64)) >> np.uint64(20)) % np.uint64(len(CATEGORIES))
    # Metadata as jsonb's binary form (version 1, then the text), padded to one width with
    # spaces so every row has the same layout and numpy writes them all at once.
    metas = [b'\x01{"category": "%s"}' % c.encode() for c in CATEGORIES]
    width = max(map(len, metas))
    meta_table = np.array([m + b" " * (width - len(m)) for m in metas], dtype=f"S{width}")
    doc_meta = meta_table[category.astype(np.int64)]

    # Documents: id (doc-NNNNNN, as bench-search names them), content_hash, metadata, chunks.
    per_doc = np.bincount(chunk_doc, minlength=n_docs).astype(">i4")
    assert n_docs <= 1_000_000, "ids past doc-999999 change width"
    ids = np.array([b"doc-%06d" % i for i in range(n_docs)], dtype="S10")
    id_width = 10
    doc_dtype = np.dtype(
        [("n", ">i2"), ("id_len", ">i4"), ("id", f"S{id_width}"), ("h_len", ">i4"), ("m_len", ">i4"),
         ("m", f"S{width}"), ("c_len", ">i4"), ("c", ">i4")]
    )
    docs = np.zeros(n_docs, dtype=doc_dtype)
    docs["n"], docs["id_len"], docs["id"] = 4, id_width, ids
    docs["h_len"] = 0  # empty content hash: these rows were never embedded from text
    docs["m_len"], docs["m"] = width, doc_meta
    docs["c_len"], docs["c"] = 4, per_doc
    with open(out / "documents.copy", "wb") as f:
        f.write(HEADER)
        docs.tofile(f)
        f.write(TRAILER)

    # Chunks: doc_id, chunk, span_start, span_end, snippet, metadata, embedding (halfvec).
    starts = np.r_[0, np.cumsum(per_doc.astype(np.int64))[:-1]]
    chunk_no = np.arange(n_chunks) - starts[chunk_doc]
    halves = vectors.astype(">f2")
    snippet = b"synthetic"
    chunk_dtype = np.dtype(
        [("n", ">i2"), ("id_len", ">i4"), ("id", f"S{id_width}"), ("k_len", ">i4"), ("k", ">i4"),
         ("s_len", ">i4"), ("s", ">i4"), ("e_len", ">i4"), ("e", ">i4"), ("t_len", ">i4"), ("t", f"S{len(snippet)}"),
         ("m_len", ">i4"), ("m", f"S{width}"), ("v_len", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("v", ">f2", (DIMS,))]
    )
    with open(out / "chunks.copy", "wb") as f:
        f.write(HEADER)
        step = 100_000
        for lo in range(0, n_chunks, step):
            hi = min(lo + step, n_chunks)
            rows = np.zeros(hi - lo, dtype=chunk_dtype)
            d = chunk_doc[lo:hi]
            rows["n"], rows["id_len"], rows["id"] = 7, id_width, ids[d]
            rows["k_len"], rows["k"] = 4, chunk_no[lo:hi]
            rows["s_len"], rows["s"], rows["e_len"], rows["e"] = 4, 0, 4, len(snippet)
            rows["t_len"], rows["t"] = len(snippet), snippet
            rows["m_len"], rows["m"] = width, doc_meta[d]
            rows["v_len"], rows["dim"], rows["unused"], rows["v"] = 4 + 2 * DIMS, DIMS, 0, halves[lo:hi]
            rows.tofile(f)
        f.write(TRAILER)

    # Exact top-10 chunk rows per query, by cosine over the float16 values.
    stored = halves.astype(np.float32)
    stored /= np.linalg.norm(stored, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    exact = []
    for row in q:
        scores = stored @ row
        top = np.argpartition(-scores, 10)[:10]
        top = top[np.argsort(-scores[top])]
        exact.append([[ids[chunk_doc[i]].decode(), int(chunk_no[i])] for i in top])
    (out / "exact.json").write_text(json.dumps(exact))
    print(json.dumps({"documents": n_docs, "chunks": n_chunks, "queries": len(queries)}))


if __name__ == "__main__":
    main()
