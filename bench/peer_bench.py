#!/usr/bin/env python3
"""The ONNX Runtime side of bench.py's engine workloads, in process, with the same JSON report
as `snapembed bench`: texts one per line, batches of --batch sorted by length (less padding, as
sentence-transformers' encode does), tokenize + run + mean-pool + normalize.
Usage: python peer_bench.py MODEL.onnx TOKENIZER.json TEXTS --batch N --passes N --threads N [--vectors OUT.npy]"""
import argparse, json, os, time
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

ap = argparse.ArgumentParser()
ap.add_argument("model"); ap.add_argument("tokenizer"); ap.add_argument("texts")
ap.add_argument("--batch", type=int, default=1); ap.add_argument("--passes", type=int, default=1)
ap.add_argument("--threads", type=int, default=1); ap.add_argument("--vectors")
a = ap.parse_args()
so = ort.SessionOptions()
so.intra_op_num_threads = a.threads
so.inter_op_num_threads = 1
sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
tok = Tokenizer.from_file(a.tokenizer)
tok.no_padding()
tok.enable_truncation(256)
texts = open(a.texts, encoding="utf-8").read().split("\n")
texts = texts[:-1] if texts and texts[-1] == "" else texts


def embed(batch):
    encs = tok.encode_batch([t.strip() for t in batch])
    n = max(len(e.ids) for e in encs)
    ids = np.zeros((len(encs), n), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, e in enumerate(encs):
        ids[i, :len(e.ids)] = e.ids
        mask[i, :len(e.ids)] = 1
    hs = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
    m = mask[..., None].astype(np.float32)
    v = (hs * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


lengths = [len(e.ids) for e in tok.encode_batch(texts)]
order = np.argsort(lengths, kind="stable") if a.batch > 1 else np.arange(len(texts))
embed(texts[:a.batch])
calls, out = [], np.zeros((len(texts), 384), dtype=np.float32)
start = time.perf_counter()
for _ in range(max(1, a.passes)):
    for s in range(0, len(order), a.batch):
        idx = order[s:s + a.batch]
        t = time.perf_counter()
        out[idx] = embed([texts[i] for i in idx])
        calls.append((time.perf_counter() - t) * 1e3)
total = time.perf_counter() - start
if a.vectors:
    np.save(a.vectors, out)
calls.sort()
pct = lambda q: calls[round((len(calls) - 1) * q)]
print(json.dumps({"calls": len(calls), "median_ms": pct(0.5), "p99_ms": pct(0.99),
                  "texts_per_s": len(texts) * max(1, a.passes) / total, "threads": a.threads}))
