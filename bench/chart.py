#!/usr/bin/env python3
"""Draws bench/results/chart.svg from the engine profiles' JSON (bench.py writes results/*.json):
one group of bars per machine profile, thread count and workload, one bar per engine, each the
engine's speed relative to ONNX Runtime's fused dynamic int8 (above 1: faster than it).
Plain SVG text, no plotting library. Usage: python chart.py results/engine.json results/engine-lambda.json ..."""
import json, os, statistics, sys

COLORS = {"snapembed": "#1b7837", "snapembed exact": "#7fbf7b", "ORT fused int8": "#2166ac", "ORT int8": "#67a9cf",
          "ORT fused fp32": "#b2182b", "ORT fp32": "#ef8a62"}
PROFILES = {"engine": "AVX-512 VNNI server", "engine-lambda": "Lambda x86_64 (AVX2/FMA)"}
WORKLOADS = {"a": "16 tokens", "b": "128 tokens", "c": "1,680 texts"}


def groups(path):
    d = json.load(open(path))
    profile = os.path.splitext(os.path.basename(path))[0]
    cells = {(c["threads"], c["workload"], c["system"]): c for c in d["cells"]}
    for th in sorted({c["threads"] for c in d["cells"]}):
        for w in "abc":
            base = cells[(th, w, d["base"])]
            bars = []
            for n in d["names"]:
                c = cells[(th, w, n)]
                # CPU time where there is one thread (robust on a loaded machine), else wall time;
                # the median of the per-round ratios, as the table takes them.
                if th == 1 and "cpu_ms_per_text" in c:
                    speed = lambda r, b: b["cpu_ms_per_text"] / r["cpu_ms_per_text"]
                elif w == "c":
                    speed = lambda r, b: r["texts_per_s"] / b["texts_per_s"]
                else:
                    speed = lambda r, b: b["median_ms"] / r["median_ms"]
                bars.append((n, statistics.median(speed(r, b) for r, b in zip(c["runs"], base["runs"]))))
            yield f"{PROFILES.get(profile, profile)}", f"{WORKLOADS[w]}, {th} thr", bars, d["header"]


def svg(all_groups):
    bar, gap, top, left, height = 11, 16, 60, 50, 260
    names = list(dict.fromkeys(n for g in all_groups for n, _ in g[2]))
    vmax = max(2.0, max(v for g in all_groups for _, v in g[2]) * 1.1)
    y = lambda v: top + height - v / vmax * height
    width = max(left + len(all_groups) * (len(names) * bar + gap) + 20, left + len(names) * 130, 720)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + height + 110}" font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="18" font-size="14">Speed relative to ONNX Runtime fused dynamic int8 (1 = same; higher is faster; 1 thread: by CPU time)</text>']
    for i, n in enumerate(names):
        out.append(f'<rect x="{left + i * 130}" y="30" width="10" height="10" fill="{COLORS.get(n, "#999")}"/><text x="{left + i * 130 + 14}" y="39">{n}</text>')
    t = 0.0
    while t <= vmax:
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="{"#333" if t == 1 else "#ddd"}"/>'
                   f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:.1f}×</text>')
        t += 0.5
    x = left + gap / 2
    prev = None
    for profile, label, bars, _ in all_groups:
        if profile != prev:
            out.append(f'<text x="{x}" y="{top + height + 80}" font-weight="bold">{profile}</text>')
            prev = profile
        for n, v in bars:
            out.append(f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar - 1}" height="{top + height - y(v):.1f}" fill="{COLORS.get(n, "#999")}"><title>{n}: {v:.2f}×</title></rect>')
            x += bar
        cx = x - len(bars) * bar / 2
        out.append(f'<text x="{cx:.1f}" y="{top + height + 14}" text-anchor="end" transform="rotate(-35 {cx:.1f} {top + height + 14})">{label}</text>')
        x += gap
    out.append("</svg>")
    return "\n".join(out)


if __name__ == "__main__":
    gs = [g for p in sys.argv[1:] for g in groups(p)]
    dest = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "chart.svg")
    open(dest, "w").write(svg(gs) + "\n")
    print(f"wrote {dest}", file=sys.stderr)
