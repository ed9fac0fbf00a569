#!/usr/bin/env python3
"""The ONNX Runtime side of bench.py's engine workloads, in process, with the same JSON report
as `snapembed bench`: texts one per line, batches of --batch sorted by length (less padding, as
sentence-transformers' encode does), tokenize + run + mean-pool + normalize.
With --lockstep it waits for a line on stdin before each timed call and prints that call's CPU
seconds as a JSON line, as `snapembed bench --lockstep` does (bench/lockstep.py).
Usage: python peer_bench.py MODEL.onnx TOKENIZER.json TEXTS --batch N --passes N --threads N [--vectors OUT.npy] [--lockstep]"""
import argparse, json, sys, time
import numpy as np
import ort_peer

ap = argparse.ArgumentParser()
ap.add_argument("model"); ap.add_argument("tokenizer"); ap.add_argument("texts")
ap.add_argument("--batch", type=int, default=1); ap.add_argument("--passes", type=int, default=1)
ap.add_argument("--threads", type=int, default=1); ap.add_argument("--vectors")
ap.add_argument("--lockstep", action="store_true")
a = ap.parse_args()
sess, tok = ort_peer.load(a.model, a.tokenizer, a.threads)
texts = open(a.texts, encoding="utf-8").read().split("\n")
texts = texts[:-1] if texts and texts[-1] == "" else texts


def embed(batch):
    return ort_peer.embed(sess, tok, batch)


lengths = [len(e.ids) for e in tok.encode_batch(texts)]
order = np.argsort(lengths, kind="stable") if a.batch > 1 else np.arange(len(texts))
embed(texts[:a.batch])
calls, out = [], np.zeros((len(texts), 384), dtype=np.float32)
start, cpu = time.perf_counter(), time.process_time()
for _ in range(max(1, a.passes)):
    for s in range(0, len(order), a.batch):
        idx = order[s:s + a.batch]
        if a.lockstep and not sys.stdin.readline():
            sys.exit("--lockstep: stdin closed before the last call")
        t, call_cpu = time.perf_counter(), time.process_time()
        out[idx] = embed([texts[i] for i in idx])
        calls.append((time.perf_counter() - t) * 1e3)
        if a.lockstep:
            print(json.dumps({"cpu_s": time.process_time() - call_cpu}), flush=True)
total, cpu = time.perf_counter() - start, time.process_time() - cpu
if a.vectors:
    np.save(a.vectors, out)
calls.sort()
pct = lambda q: calls[round((len(calls) - 1) * q)]
print(json.dumps({"calls": len(calls), "median_ms": pct(0.5), "p99_ms": pct(0.99),
                  "texts_per_s": len(texts) * max(1, a.passes) / total, "threads": a.threads, "cpu_s": cpu}))
