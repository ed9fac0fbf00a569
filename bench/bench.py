#!/usr/bin/env python3
"""snapembed against ONNX Runtime, side by side, on this machine, in one run.
Run through bench/run.sh, which builds everything this needs. Writes bench/results/*.md.

Workloads: cold — whole processes, exec to exit, embedding one 16-token text;
http — POST /embed under wrk against a FastAPI + onnxruntime service, 1 short text and 32 texts;
engine — in process, threads 1 and 2: (a) one 16-token text, (b) one 128-token text, (c) 1,680
mixed texts at batch 32; with accuracy against fp32 and callgrind instruction counts for (a);
lambda — the engine workloads with every program under ../shared/tools/avx2-only (Lambda x86_64's
AVX2/FMA), --repeat times each, into results/engine-lambda.md. engine and lambda also write
JSON beside their tables and redraw results/chart.svg."""
import argparse, datetime, glob, json, os, platform, re, socket, statistics, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mix import mix

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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port, proc, timeout=60):
    t = time.time()
    while time.time() - t < timeout:
        if proc.poll() is not None:
            sys.exit(f"server exited: {proc.args}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return time.time() - t
        except Exception:
            time.sleep(0.02)
    sys.exit("server did not become healthy")


def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/embed", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))


def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wrk(port, body, seconds, connections):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {json.dumps(json.dumps(body))}\n')
        script = f.name
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s", "--latency", "-s", script, f"http://127.0.0.1:{port}/embed"],
                         capture_output=True, text=True).stdout
    os.unlink(script)
    def ms(label):
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)", out, re.M)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out) or re.search(r"Socket errors: .*timeout (\d+)", out)
    if errors and int(errors.group(1)) > 0:
        sys.exit(f"wrk saw {errors.group(1)} errors or timeouts:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), ms("50%"), ms("99%")


def http(args):
    short = {"inputs": [TEXT16]}
    batch = {"inputs": mix(32, seed=32)}
    servers = {
        "snapembed": lambda port: [os.path.join(ROOT, "target/release/snapembed"), "serve", "--host", "127.0.0.1", "--port", str(port),
                                   "--threads", "1", "--snapshot", os.path.join(ROOT, "artifacts/all-MiniLM-L6-v2.snap")],
        "FastAPI + ONNX Runtime int8": lambda port: [sys.executable, os.path.join(HERE, "peer_server.py"), os.path.join(args.onnx_dir, "model_int8.onnx"), args.tokenizer, str(port), "1"],
        "FastAPI + ONNX Runtime fp32": lambda port: [sys.executable, os.path.join(HERE, "peer_server.py"), os.path.join(args.onnx_dir, "model_fp32.onnx"), args.tokenizer, str(port), "1"],
    }
    results, ref = [], None
    before = machine_load()
    for name, cmd in servers.items():
        port = free_port()
        env = dict(os.environ, RUST_LOG="warn", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        proc = subprocess.Popen(cmd(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            ready = wait_healthy(port, proc)
            vecs = post(port, batch)
            if ref is None:
                ref = vecs
            agree = min(cosine(a, b) for a, b in zip(ref, vecs))
            row = [name, ready]
            for body, connections in ((short, 4), (batch, 2)):
                post(port, body)  # warm
                row.append(wrk(port, body, args.seconds, connections))
            row += [peak_rss_mb(proc.pid), agree]
            results.append(row)
        finally:
            proc.terminate()
            proc.wait()
    after = machine_load()
    base = results[0]
    lines = [f"HTTP: POST /embed under wrk (1 thread; 4 connections for 1 text, 2 for 32 texts; {args.seconds} s per case), servers limited to one compute thread, "
             "same machine, same run. Ratios are snapembed's advantage (peer latency / snapembed latency, snapembed rps / peer rps).", "",
             "| server | ready s | 1 text: req/s | p50 ms | p99 ms | 32 texts: req/s | p50 ms | p99 ms | peak RSS MB | min cosine to snapembed |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, ready, (r1, p50a, p99a), (r32, p50b, p99b), rss, agree in results:
        lines.append(f"| {name} | {ready:.2f} | {r1:.0f} | {p50a:.1f} | {p99a:.1f} | {r32:.1f} | {p50b:.0f} | {p99b:.0f} | {rss:.0f} | {agree:.4f} |")
    for name, ready, (r1, p50a, p99a), (r32, p50b, p99b), rss, agree in results[1:]:
        lines.append(f"| snapembed vs {name} | | {base[2][0] / r1:.1f}× | {p50a / base[2][1]:.1f}× | {p99a / base[2][2]:.1f}× | "
                     f"{base[3][0] / r32:.1f}× | {p50b / base[3][1]:.1f}× | {p99b / base[3][2]:.1f}× | {rss / base[4]:.1f}× | |")
    lines += ["", f"Machine before: {before}.", f"Machine after: {after}.",
              "wrk shares the 2 vCPUs with the server under test; every server pays the same."]
    return "\n".join(lines)


def text_of(tokenizer, n):
    """A natural-looking text of exactly n word pieces ([CLS] and [SEP] included)."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tokenizer)
    tok.no_padding(); tok.no_truncation()
    words = " ".join(mix(400, seed=n)).split()
    out = []
    for w in words:
        cand = out + [w]
        k = len(tok.encode(" ".join(cand)).ids)
        if k <= n:
            out = cand
        if k >= n:
            break
    assert len(tok.encode(" ".join(out)).ids) == n
    return " ".join(out)


AVX2_ONLY = "/work/shared/tools/avx2-only"


def engine(args, wrap=(), repeat=1):
    """The engine workloads; `wrap` prefixes every command (the lambda profile: `avx2-only --`).
    Each program runs `repeat` times per cell, in rounds so load spikes spread over all; the
    table shows medians."""
    tmp = tempfile.mkdtemp()
    files = {}
    for name, texts in (("a", [TEXT16]), ("b", [text_of(args.tokenizer, 128)]), ("c", mix(1680))):
        files[name] = os.path.join(tmp, f"{name}.txt")
        open(files[name], "w").write("\n".join(texts) + "\n")
    snap = os.path.join(ROOT, "target/release/snapembed")
    snap_cmd = lambda kernels: lambda f, batch, passes, th, vec: [snap, "bench", "--snapshot", os.path.join(ROOT, "artifacts/all-MiniLM-L6-v2.snap"), "--texts", f] + (
        ["--kernels", kernels] if kernels else []) + ["--batch", str(batch), "--passes", str(passes), "--threads", str(th)] + (["--vectors", vec] if vec else [])
    ort_cmd = lambda model: lambda f, batch, passes, th, vec: [sys.executable, os.path.join(HERE, "peer_bench.py"), os.path.join(args.onnx_dir, model), args.tokenizer, f,
                                                              "--batch", str(batch), "--passes", str(passes), "--threads", str(th)] + (["--vectors", vec] if vec else [])
    systems = {
        "snapembed": snap_cmd(None),
        "snapembed exact": snap_cmd("exact"),
        "ORT fused int8": ort_cmd("model_fused_int8.onnx"),
        "ORT int8": ort_cmd("model_int8.onnx"),
        "ORT fused fp32": ort_cmd("model_fused_fp32.onnx"),
        "ORT fp32": ort_cmd("model_fp32.onnx"),
    }
    work = {"a": (files["a"], 1, 300), "b": (files["b"], 1, 60), "c": (files["c"], 32, 1)}
    runs, vecs = {}, {}
    before = machine_load()
    kernels = subprocess.run(list(wrap) + [snap, "info", "--snapshot", os.path.join(ROOT, "artifacts/all-MiniLM-L6-v2.snap")], capture_output=True, text=True).stdout
    kernels = json.loads(kernels) if kernels.strip().startswith("{") else {}
    threads = tuple(int(t) for t in args.threads.split(","))
    # Each comparison's two programs run back to back, so one round's ratio sees one state of a
    # shared host whose speed drifts within minutes.
    order = ["snapembed", "ORT fused int8", "ORT int8", "snapembed exact", "ORT fused fp32", "ORT fp32"]
    # snapembed's own gain from more threads on one text: its 1-thread run directly after its
    # multi-thread one, not in the 1-thread block minutes earlier.
    own = "snapembed, 1 thread"
    for rnd in range(repeat):
        for th in threads:
            for w, (f, batch, passes) in work.items():
                for name in order[:1] + ([own] if th > 1 and w == "b" else []) + order[1:]:
                    cmd = systems["snapembed"] if name == own else systems[name]
                    th_run = 1 if name == own else th
                    vec = os.path.join(tmp, f"{name}-{th}.{'npy' if not name.startswith('snapembed') else 'jsonl'}") if w == "c" and rnd == 0 else None
                    env = dict(os.environ, OMP_NUM_THREADS=str(th_run), OPENBLAS_NUM_THREADS="1")
                    p = subprocess.run(list(wrap) + ["/usr/bin/time", "-f", "%U %S %M"] + cmd(f, batch, passes, th_run, vec), capture_output=True, text=True, env=env)
                    if p.returncode != 0:
                        sys.exit(f"{name} failed: {p.stderr[-600:]}")
                    r = json.loads(p.stdout.strip().splitlines()[-1])
                    user, sys_, rss = p.stderr.strip().splitlines()[-1].split()
                    r["peak_rss_mb"] = int(rss) / 1024
                    # CPU time resists a shared machine's load far better than wall time. Both
                    # sides report their timed loop's; the whole process's is the fallback.
                    r.setdefault("cpu_s", float(user) + float(sys_))
                    r["cpu_ms_per_text"] = r["cpu_s"] * 1e3 / (r["calls"] * batch if w != "c" else 1680)
                    runs.setdefault((th, w, name), []).append(r)
                    if vec:
                        vecs[(th, name)] = vec
                    print(f"  round {rnd + 1}/{repeat} threads {th} ({w}) {name}: {r}", file=sys.stderr)
    after = machine_load()
    med = lambda rs, key: statistics.median(r[key] for r in rs)
    res = {k: {key: med(rs, key) for key in ("median_ms", "p99_ms", "texts_per_s", "peak_rss_mb", "cpu_ms_per_text")} for k, rs in runs.items()}
    # Ratios are the median of the per-round ratios, each taken between two runs minutes apart
    # at most; a ratio of two medians would pair runs from different rounds.
    per_round = lambda key, num, den: statistics.median(a[key] / b[key] for a, b in zip(runs[num], runs[den]))
    ratio = lambda th, w, key, num, den: per_round(key, (th, w, num), (th, w, den))
    import numpy as np
    load = lambda p: np.load(p) if p.endswith(".npy") else np.array([json.loads(l) for l in open(p)])
    ref = load(vecs[(threads[0], "ORT fp32")])
    acc = {}
    for (th, name), p in vecs.items():
        v = load(p)
        c = (v * ref).sum(1) / np.linalg.norm(v, axis=1) / np.linalg.norm(ref, axis=1)
        acc[(th, name)] = (float(c.mean()), float(c.min()))
    names = list(systems)
    base = "ORT fused int8"
    where = (f"every program under `{os.path.basename(AVX2_ONLY)}` (as on Lambda x86_64: no AVX-512, no AVX-VNNI); " if wrap else "")
    lines = [f"Engine, in process: (a) one 16-token text ×300, (b) one 128-token text ×60, (c) 1,680 mixed texts (bench/mix.py) at batch 32; "
             f"{where}median of {repeat} run{'s' if repeat > 1 else ''} per cell. "
             "ONNX Runtime 1.32 sorts batches by length; snapembed packs them without padding. "
             f"snapembed runs its default kernels (`auto`: {kernels.get('kernels', '?')} here), 'snapembed exact' keeps activations in f32 (`--kernels exact`). "
             "'ORT fused' graphs are `onnxruntime.transformers.optimizer` (model type bert) over the same fp32 export, then `quantize_dynamic` (bench/fuse_onnx.py). "
             "CPU ms per text (1 thread) is the process's CPU time (all threads) over its timed loop, after one warm-up call, on both sides "
             "(ORT: `time.process_time()`; snapembed: `CLOCK_PROCESS_CPUTIME_ID`), which a loaded machine inflates far less than wall time. "
             "Each round runs every program once, snapembed followed directly by the ORT int8 graphs. "
             "Ratios are medians of the per-round ratios; latency and CPU ratios are peer ÷ snapembed, throughput ratios snapembed ÷ peer: "
             "above 1 means snapembed is ahead.", "",
             "| threads | workload | " + " | ".join(names) + " | vs ORT fused int8 | vs ORT int8 | vs ORT fused fp32 |", "|---|---|" + "---:|" * (len(names) + 3)]
    vs = ("ORT fused int8", "ORT int8", "ORT fused fp32")
    for th in threads:
        if th == 1:
            for w, label in (("a", "(a) 16 tokens, CPU ms per text"), ("b", "(b) 128 tokens, CPU ms per text"), ("c", "(c) CPU ms per text")):
                cells = [f"{res[(th, w, n)]['cpu_ms_per_text']:.2f}" for n in names]
                lines.append(f"| {th} | {label} | " + " | ".join(cells) + " | " + " | ".join(f"{ratio(th, w, 'cpu_ms_per_text', v, 'snapembed'):.2f}×" for v in vs) + " |")
        for w, label in (("a", "(a) 16 tokens, median / p99 ms"), ("b", "(b) 128 tokens, median / p99 ms")):
            cells = [f"{res[(th, w, n)]['median_ms']:.2f} / {res[(th, w, n)]['p99_ms']:.2f}" for n in names]
            lines.append(f"| {th} | {label} | " + " | ".join(cells) + " | " + " | ".join(f"{ratio(th, w, 'median_ms', v, 'snapembed'):.2f}×" for v in vs) + " |")
        cells = [f"{res[(th, 'c', n)]['texts_per_s']:.0f}" for n in names]
        lines.append(f"| {th} | (c) texts/s | " + " | ".join(cells) + " | " + " | ".join(f"{ratio(th, 'c', 'texts_per_s', 'snapembed', v):.2f}×" for v in vs) + " |")
        cells = [f"{res[(th, 'c', n)]['peak_rss_mb']:.0f}" for n in names]
        lines.append(f"| {th} | (c) peak RSS MB | " + " | ".join(cells) + " | | | |")
        cells = [f"{acc[(th, n)][0]:.5f} / {acc[(th, n)][1]:.5f}" for n in names]
        lines.append(f"| {th} | (c) cosine to fp32, mean / min | " + " | ".join(cells) + " | | | |")
    if threads == (1, 2):
        on_b = ratio(2, "b", "median_ms", own, "snapembed")
        on_c = per_round("texts_per_s", (2, "c", "snapembed"), (1, "c", "snapembed"))
        lines += ["", f"snapembed 2 threads ÷ 1 thread, median of per-round ratios: {on_b:.2f}× on (b), its 1-thread run right after the "
                      f"2-thread one; {on_c:.2f}× on (c), from the two blocks' runs minutes apart."]
    if not wrap:
        cg = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", snap, "embed", "--snapshot",
                             os.path.join(ROOT, "artifacts/all-MiniLM-L6-v2.snap"), "--threads", "1", "--text", TEXT16], capture_output=True, text=True)
        m = re.search(r"Collected : (\d+)", cg.stderr)
        if m:
            lines.append(f"Instructions (callgrind) for a whole `snapembed embed` process on (a), snapshot check included: {int(m.group(1)) / 1e6:.1f} M.")
    lines += ["", f"Machine before: {before}.", f"Machine after: {after}."]
    raw = {"names": names, "base": base, "repeat": repeat, "wrap": list(wrap), "kernels": kernels.get("kernels"),
           "cells": [{"threads": th, "workload": w, "system": n, **res[(th, w, n)], "runs": runs[(th, w, n)]} for (th, w, n) in res],
           "accuracy": [{"threads": th, "system": n, "mean": m_, "min": mn} for (th, n), (m_, mn) in acc.items()],
           "machine_before": before, "machine_after": after}
    return "\n".join(lines), raw


def lambda_(args):
    """The engine workloads with every program under avx2-only: Lambda x86_64's instruction set."""
    return engine(args, wrap=(AVX2_ONLY, "--"), repeat=args.repeat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx-dir", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="runs per cell of the engine and lambda profiles (median shown)")
    ap.add_argument("--threads", default="1,2", help="thread counts of the engine and lambda profiles")
    ap.add_argument("workloads", nargs="*", default=["cold"])
    args = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    header = (f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {cpu}, "
              f"{os.cpu_count()} vCPUs, by `bench/run.sh`.")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    for w in args.workloads:
        print(f"running {w}…", file=sys.stderr)
        body = {"cold": cold, "http": http, "engine": lambda a: engine(a, repeat=a.repeat), "lambda": lambda_}[w](args)
        # results/lambda.md is the Lambda artifact's own measurement (size, cold start).
        name = {"lambda": "engine-lambda"}.get(w, w)
        if isinstance(body, tuple):
            body, raw = body
            json.dump({"header": header, **raw}, open(os.path.join(HERE, "results", f"{name}.json"), "w"), indent=1)
            subprocess.run([sys.executable, os.path.join(HERE, "chart.py")] + sorted(glob.glob(os.path.join(HERE, "results", "*.json"))), check=True)
        text = f"{header}\n\n{body}\n"
        open(os.path.join(HERE, "results", f"{name}.md"), "w").write(text)
        print(text)


if __name__ == "__main__":
    main()
