#!/usr/bin/env python3
"""snapembed against ONNX Runtime, side by side, on this machine, in one run.
Run through bench/run.sh, which builds everything this needs. Writes bench/results/*.md.

Workloads: cold — whole processes, exec to exit, embedding one 16-token text."""
import argparse, datetime, json, os, platform, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TEXT16 = "A man is playing a guitar on the stage with his band tonight!"


def machine_load():
    """What else the machine was doing: load averages and the busiest other processes."""
    la = os.getloadavg()
    top = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"], capture_output=True, text=True).stdout
    busy = [l.strip() for l in top.splitlines()[:4] if l.strip() and float(l.split()[0]) >= 5.0]
    return f"load average {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f}; busiest processes: {', '.join(busy) or 'none above 5% CPU'}"


def timed_runs(cmd, n, env=None):
    """n runs; returns times (s) and peak RSS (MB) measured by GNU time."""
    times, rss = [], []
    for _ in range(n):
        t = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, env=env)
        times.append(time.perf_counter() - t)
        if p.returncode != 0:
            sys.exit(f"{' '.join(cmd[:3])} failed: {p.stderr.decode()[-800:]}")
        rss.append(int(p.stderr.decode().strip().splitlines()[-1]) / 1024)
    return times, rss


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def cosine(a, b):
    import math
    d = sum(x * y for x, y in zip(a, b))
    return d / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def cold(args):
    snap = [os.path.join(ROOT, "target/release/snapembed"), "embed", "--snapshot", os.path.join(ROOT, "artifacts/all-MiniLM-L6-v2.snap"), "--text", TEXT16]
    peers = {
        "ONNX Runtime int8 (quantize_dynamic)": [sys.executable, os.path.join(HERE, "peer_embed.py"), os.path.join(args.onnx_dir, "model_int8.onnx"), args.tokenizer, TEXT16],
        "ONNX Runtime fp32": [sys.executable, os.path.join(HERE, "peer_embed.py"), os.path.join(args.onnx_dir, "model_fp32.onnx"), args.tokenizer, TEXT16],
    }
    # Same answer first: the peers' vectors must agree with snapembed's.
    ref = json.loads(subprocess.run(snap, capture_output=True, check=True).stdout)
    for name, cmd in peers.items():
        v = json.loads(subprocess.run(cmd, capture_output=True, check=True).stdout)
        print(f"  {name}: cosine to snapembed {cosine(ref, v):.5f}", file=sys.stderr)
    env1 = dict(os.environ, SNAPEMBED_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    rows = []
    before = machine_load()
    s_t, s_rss = timed_runs(snap, args.runs, env1)
    rows.append(("snapembed", s_t, s_rss))
    for name, cmd in peers.items():
        t, rss = timed_runs(cmd, args.runs, env1)
        rows.append((name, t, rss))
    after = machine_load()
    base = statistics.median(s_t)
    lines = [f"Cold start: whole process, exec to exit, one 16-token text, 1 thread, {args.runs} runs each.", "",
             "| process | median ms | p90 ms | min ms | peak RSS MB | median vs snapembed |", "|---|---:|---:|---:|---:|---:|"]
    for name, t, rss in rows:
        m = statistics.median(t)
        lines.append(f"| {name} | {m * 1e3:.1f} | {pct(t, 0.9) * 1e3:.1f} | {min(t) * 1e3:.1f} | {max(rss):.0f} | {m / base:.1f}× |")
    lines += ["", f"Machine before: {before}.", f"Machine after: {after}."]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx-dir", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("workloads", nargs="*", default=["cold"])
    args = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    header = (f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {cpu}, "
              f"{os.cpu_count()} vCPUs, by `bench/run.sh`.")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    for w in args.workloads:
        print(f"running {w}…", file=sys.stderr)
        body = {"cold": cold}[w](args)
        text = f"{header}\n\n{body}\n"
        open(os.path.join(HERE, "results", f"{w}.md"), "w").write(text)
        print(text)


if __name__ == "__main__":
    main()
