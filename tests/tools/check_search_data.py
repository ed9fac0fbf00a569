#!/usr/bin/env python3
"""Validate the search-quality test data: the sample corpus and the labelled queries.

    python3 tests/tools/check_search_data.py [CORPUS.jsonl] [QUERIES.jsonl]

Defaults: artifacts/sample-corpus.jsonl and tests/data/search_queries.jsonl,
relative to the repository root. Standard library only. Prints counts and the
length distribution in words; exits 1 if anything is invalid.

Checks
  corpus:  one JSON object per line; id ("kb-NNNN") unique; title and text
           non-empty strings; metadata has category, product_area, audience
           (admin|user|developer|accountant) and updated (YYYY-MM-DD).
  queries: one JSON object per line; query non-empty and not repeated;
           relevant a non-empty list of existing, distinct corpus ids; note a
           string if present; filter (if present) an object whose keys are
           metadata fields and whose values occur in the corpus, and every
           relevant entry matches the filter (otherwise it could never be found).
  "deep" queries (note contains "deep") must have at least one relevant entry
  longer than DEEP_MIN_WORDS words, i.e. one that is split into several chunks.
"""
import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AUDIENCES = {"admin", "user", "developer", "accountant"}
META_KEYS = ("category", "product_area", "audience", "updated")
# 256 word pieces is roughly 180 English words for this corpus.
DEEP_MIN_WORDS = 180
BUCKETS = [(0, 39, "<40"), (40, 100, "40-100"), (101, 200, "101-200"),
           (201, 299, "201-299"), (300, 900, "300-900"), (901, 10**9, ">900")]

errors = []


def err(where, msg):
    errors.append(f"{where}: {msg}")


def read_jsonl(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                err(f"{path.name}:{n}", "blank line")
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                err(f"{path.name}:{n}", f"invalid JSON ({e})")
                continue
            if not isinstance(obj, dict):
                err(f"{path.name}:{n}", "not a JSON object")
                continue
            rows.append((n, obj))
    return rows


def words(text):
    return len(text.split())


def check_corpus(path):
    entries = {}
    for n, e in read_jsonl(path):
        where = f"{path.name}:{n}"
        eid = e.get("id")
        if not isinstance(eid, str) or not re.fullmatch(r"kb-\d{4}", eid):
            err(where, f"bad id {eid!r}")
            continue
        if eid in entries:
            err(where, f"duplicate id {eid}")
            continue
        for key in ("title", "text"):
            if not isinstance(e.get(key), str) or not e[key].strip():
                err(where, f"{eid}: {key} missing or empty")
        meta = e.get("metadata")
        if not isinstance(meta, dict):
            err(where, f"{eid}: metadata missing")
            meta = {}
        for key in META_KEYS:
            if not isinstance(meta.get(key), str) or not meta[key]:
                err(where, f"{eid}: metadata.{key} missing")
        if meta.get("audience") not in AUDIENCES:
            err(where, f"{eid}: audience {meta.get('audience')!r} not in {sorted(AUDIENCES)}")
        if not re.fullmatch(r"20\d\d-[01]\d-[0-3]\d", str(meta.get("updated", ""))):
            err(where, f"{eid}: updated {meta.get('updated')!r} is not YYYY-MM-DD")
        extra = set(e) - {"id", "title", "text", "metadata"}
        if extra:
            err(where, f"{eid}: unexpected keys {sorted(extra)}")
        entries[eid] = e
    return entries


def check_queries(path, entries):
    values = {k: {e["metadata"].get(k) for e in entries.values()} for k in META_KEYS}
    rows = read_jsonl(path)
    seen = set()
    for n, q in rows:
        where = f"{path.name}:{n}"
        text = q.get("query")
        if not isinstance(text, str) or not text.strip():
            err(where, "query missing or empty")
            continue
        if text.strip().lower() in seen:
            err(where, f"query repeated: {text!r}")
        seen.add(text.strip().lower())
        rel = q.get("relevant")
        if not isinstance(rel, list) or not rel:
            err(where, "relevant must be a non-empty list")
            rel = []
        if len(set(rel)) != len(rel):
            err(where, "relevant lists an id twice")
        for rid in rel:
            if rid not in entries:
                err(where, f"relevant id {rid!r} not in corpus")
        if "note" in q and not isinstance(q["note"], str):
            err(where, "note must be a string")
        extra = set(q) - {"query", "relevant", "note", "filter"}
        if extra:
            err(where, f"unexpected keys {sorted(extra)}")
        flt = q.get("filter")
        if flt is not None:
            if not isinstance(flt, dict) or not flt:
                err(where, "filter must be a non-empty object")
            else:
                for k, v in flt.items():
                    if k not in values:
                        err(where, f"filter key {k!r} is not a metadata field")
                    elif v not in values[k]:
                        err(where, f"filter {k}={v!r} matches no corpus entry")
                for rid in rel:
                    meta = entries.get(rid, {}).get("metadata", {})
                    if rid in entries and any(meta.get(k) != v for k, v in flt.items()):
                        err(where, f"relevant {rid} does not match the filter {flt}")
        if "deep" in q.get("note", "") and rel and all(
                rid in entries and words(entries[rid]["text"]) <= DEEP_MIN_WORDS for rid in rel):
            err(where, f"noted deep but no relevant entry is over {DEEP_MIN_WORDS} words")
    return [q for _, q in rows]


def main():
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "artifacts/sample-corpus.jsonl"
    queries = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "tests/data/search_queries.jsonl"
    entries = check_corpus(corpus)
    qs = check_queries(queries, entries)

    print(f"corpus  {corpus.name}: {len(entries)} entries")
    cats = Counter(e["metadata"]["category"] for e in entries.values()
                   if isinstance(e.get("metadata"), dict) and "category" in e["metadata"])
    for cat, c in sorted(cats.items()):
        print(f"  {cat:<18} {c:>4}")
    aud = Counter(e.get("metadata", {}).get("audience") for e in entries.values())
    print("  audience: " + ", ".join(f"{k} {v}" for k, v in sorted(aud.items(), key=str)))
    lens = sorted(words(e.get("text", "")) for e in entries.values())
    if lens:
        print(f"  words per text: min {lens[0]}, median {lens[len(lens) // 2]}, max {lens[-1]}")
        for lo, hi, label in BUCKETS:
            print(f"  {label:>8} words: {sum(lo <= w <= hi for w in lens):>4}")
    print(f"  texts with line breaks: {sum(chr(10) in e.get('text', '') for e in entries.values())}, "
          f"with non-ASCII: {sum(any(ord(c) > 127 for c in e.get('text', '')) for e in entries.values())}")

    print(f"queries {queries.name}: {len(qs)}")
    nrel = Counter(len(q.get("relevant") or []) for q in qs)
    print("  relevant per query: " + ", ".join(f"{k}: {v}" for k, v in sorted(nrel.items())))
    deep = sum("deep" in q.get("note", "") for q in qs)
    filt = sum("filter" in q for q in qs)
    qlen = [words(q.get("query", "")) for q in qs]
    sentences = [len([s for s in re.split(r"[.?!]+\s", q.get("query", "").strip()) if s]) for q in qs]
    print(f"  deep: {deep}, filtered: {filt}, typo: {sum('typo' in q.get('note', '') for q in qs)}")
    print(f"  query words: <=5: {sum(w <= 5 for w in qlen)}, 6-15: {sum(6 <= w <= 15 for w in qlen)}, "
          f">15: {sum(w > 15 for w in qlen)}; 3+ sentences: {sum(s >= 3 for s in sentences)}")
    cited = {rid for q in qs for rid in q.get("relevant") or []}
    print(f"  corpus entries cited as relevant: {len(cited & set(entries))}")

    if errors:
        print(f"\nFAILED: {len(errors)} problem(s)")
        for e in errors:
            print("  " + e)
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
