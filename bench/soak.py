"""Soak client: N concurrent clients for D seconds against a running snapembed, mixing good
requests (/embed, /search, /webhook/tally, /score) with bad ones (malformed JSON, oversized,
wrong types, no content type), each checked against the status it must get. Samples the
server's RSS (from /proc/PID/status) and /memory-status every second.

Writes a JSON summary (--out) and prints a Markdown section; exits 1 when a good request got
anything but 200 (or, with --allow-503, a memory-pressure 503) or a bad one anything but its 4xx.
Called by bench/soak.sh; see there for the server it starts.
"""

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


def texts_from_corpus(limit=4000):
    """Sentences of the sample corpus: a varied pool, so the embedding cache is hit only sometimes."""
    out = []
    for line in (ROOT / "artifacts/sample-corpus.jsonl").read_text().splitlines():
        doc = json.loads(line)
        for s in doc["text"].replace("\n", " ").split(". "):
            s = s.strip()
            if len(s) > 20:
                out.append(s)
    random.Random(7).shuffle(out)
    return out[:limit]


def scorer_inputs():
    eval_dir = ROOT / "tests/data/scorer_eval"
    jobs = [p.read_text() for p in sorted((eval_dir / "jobs").glob("*.md"))]
    resumes = [p.read_text() for p in sorted((eval_dir / "resumes").rglob("*")) if p.is_file()]
    return jobs, resumes


class Mix:
    """Builds each request: (label, method, path, headers, body bytes, statuses it may get)."""

    def __init__(self, allow_503):
        self.texts = texts_from_corpus()
        self.jobs, self.resumes = scorer_inputs()
        self.tally = json.loads((ROOT / "tests/data/tally/support_request.json").read_text())
        self.rng = random.Random(11)
        # Under a memory emergency every new POST is refused with 503 before it is read (bodies
        # over the limit excepted: they get their 413 from Content-Length first).
        self.pressure = {503} if allow_503 else set()
        self.good = {200} | self.pressure
        self.json = {"Content-Type": "application/json"}
        # (weight, builder): about 75 % good work, 25 % bad input.
        self.kinds = [
            (30, self.embed),
            (8, self.embed_batch),
            (20, self.search),
            (8, self.tally_event),
            (3, self.score),
            (6, self.malformed),
            (4, self.oversized),
            (6, self.wrong_type),
            (3, self.no_content_type),
            (3, self.too_many_inputs),
        ]
        self.weights = [w for w, _ in self.kinds]

    def next(self):
        (_, build), = self.rng.choices(self.kinds, weights=self.weights)
        return build()

    def text(self):
        return self.rng.choice(self.texts)

    def body(self, obj):
        return json.dumps(obj).encode()

    def embed(self):
        return ("/embed", "POST", "/embed", self.json, self.body({"inputs": self.text()}), self.good)

    def embed_batch(self):
        return ("/embed x8", "POST", "/embed", self.json, self.body({"inputs": [self.text() for _ in range(8)]}), self.good)

    def search(self):
        return ("/search", "POST", "/search", self.json, self.body({"query": self.text(), "top_k": 5}), self.good)

    def tally_event(self):
        event = dict(self.tally, eventId=str(uuid.uuid4()))
        return ("/webhook/tally", "POST", "/webhook/tally", self.json, self.body(event), self.good)

    def score(self):
        return ("/score", "POST", "/score", self.json,
                self.body({"resume": self.rng.choice(self.resumes), "job_description": self.rng.choice(self.jobs)}), self.good)

    def malformed(self):
        return ("bad: malformed JSON", "POST", self.rng.choice(["/embed", "/search", "/score"]), self.json, b'{"inputs": ["unterminated', {400} | self.pressure)

    def oversized(self):
        # Over the 2 MiB body limit: answered from Content-Length before the body is read.
        return ("bad: 3 MB body", "POST", "/embed", self.json, b'{"inputs": "' + b"a" * 3_000_000 + b'"}', {413})

    def wrong_type(self):
        path, body = self.rng.choice([("/embed", {"inputs": 42}), ("/search", {"query": ["a"], "top_k": "five"}),
                                      ("/score", {"resume": 1, "job_description": None})])
        return ("bad: wrong types", "POST", path, self.json, self.body(body), {422} | self.pressure)

    def no_content_type(self):
        return ("bad: no content type", "POST", "/embed", {}, self.body({"inputs": "hello"}), {415} | self.pressure)

    def too_many_inputs(self):
        return ("bad: 65 inputs", "POST", "/embed", self.json, self.body({"inputs": ["x"] * 65}), {413} | self.pressure)


def rss_bytes(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def client(session, url, mix, deadline, records):
    while time.monotonic() < deadline:
        label, method, path, headers, body, expected = mix.next()
        t = time.perf_counter()
        try:
            async with session.request(method, url + path, headers=headers, data=body) as resp:
                await resp.read()
                status = resp.status
        except aiohttp.ClientError as e:
            status = f"{type(e).__name__}: {e}"
        records.append((label, status, (time.perf_counter() - t) * 1e3, status in expected, time.monotonic()))


async def sampler(session, url, pid, start, deadline, samples):
    while time.monotonic() < deadline:
        second = round(time.monotonic() - start)
        level, held = None, None
        try:
            async with session.get(url + "/memory-status") as r:
                status = await r.json()
                level, held = status.get("level"), status.get("held")
        except aiohttp.ClientError:
            pass
        samples.append({"second": second, "rss_bytes": rss_bytes(pid), "level": level, "held": held})
        await asyncio.sleep(max(0.0, start + second + 1 - time.monotonic()))


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--allow-503", action="store_true", help="a memory-pressure 503 is a right answer to good work")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--title", default="soak")
    args = ap.parse_args()

    mix = Mix(args.allow_503)
    records, samples = [], []
    connector = aiohttp.TCPConnector(limit=args.clients + 2)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.monotonic()
        deadline = start + args.duration
        await asyncio.gather(sampler(session, args.url, args.pid, start, deadline, samples),
                             *(client(session, args.url, mix, deadline, records) for _ in range(args.clients)))
        elapsed = time.monotonic() - start

    routes = {}
    for label, status, ms, ok, _ in records:
        r = routes.setdefault(label, {"requests": 0, "unexpected": 0, "statuses": {}, "ms": []})
        r["requests"] += 1
        r["unexpected"] += 0 if ok else 1
        r["statuses"][str(status)] = r["statuses"].get(str(status), 0) + 1
        r["ms"].append(ms)
    summary = {"title": args.title, "clients": args.clients, "duration_s": round(elapsed, 1), "requests": len(records),
               "requests_per_s": round(len(records) / elapsed, 1), "routes": {}, "samples": samples}
    for label, r in sorted(routes.items()):
        summary["routes"][label] = {"requests": r["requests"], "unexpected": r["unexpected"], "statuses": r["statuses"],
                                    "p50_ms": round(statistics.median(r["ms"]), 2), "p99_ms": round(pct(r["ms"], 0.99), 2)}
    by_second = {s["second"]: s["rss_bytes"] for s in samples}
    rss10 = by_second.get(10) or next((v for k, v in sorted(by_second.items()) if k >= 10), 0)
    last = max(by_second) if by_second else 0
    rss_end = by_second.get(last, 0)
    summary["rss_at_10s"] = rss10
    summary["rss_at_end"] = rss_end
    summary["rss_growth_10s_to_end"] = round((rss_end - rss10) / rss10, 4) if rss10 else None
    summary["rss_max"] = max(by_second.values(), default=0)
    # A second's reading moves by a few MB with what is in flight then (bodies, a long request's
    # buffers); the median of five seconds around each end shows the trend without that.
    seconds = sorted(by_second)
    around10 = [by_second[k] for k in seconds if 8 <= k <= 12]
    tail = [by_second[k] for k in seconds[-5:]]
    summary["rss_median_8_12s"] = statistics.median(around10) if around10 else None
    summary["rss_median_last_5s"] = statistics.median(tail) if tail else None
    held_by_second = {s["second"]: s["held"] for s in samples if s.get("held")}
    summary["held_at_10s"] = next((h for k, h in sorted(held_by_second.items()) if k >= 10), None)
    summary["held_at_end"] = held_by_second[max(held_by_second)] if held_by_second else None
    summary["levels_seen"] = sorted({s["level"] for s in samples if s["level"]})
    summary["unexpected"] = sum(r["unexpected"] for r in summary["routes"].values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))

    mb = lambda b: b / 1048576
    print(f"### {args.title}\n")
    print(f"{args.clients} clients, {summary['duration_s']} s, {summary['requests']} requests ({summary['requests_per_s']}/s); "
          f"unexpected answers: **{summary['unexpected']}**\n")
    print("| requests | n | statuses | unexpected | p50 ms | p99 ms |\n|---|---:|---|---:|---:|---:|")
    for label, r in summary["routes"].items():
        statuses = ", ".join(f"{k}×{v}" for k, v in sorted(r["statuses"].items()))
        print(f"| {label} | {r['requests']} | {statuses} | {r['unexpected']} | {r['p50_ms']} | {r['p99_ms']} |")
    growth = summary["rss_growth_10s_to_end"]
    growth = f"{growth * 100:+.1f} %" if growth is not None else "n/a"
    print(f"\nRSS: {mb(rss10):.1f} MB at 10 s → {mb(rss_end):.1f} MB at {last} s "
          f"({growth}), max {mb(summary['rss_max']):.1f} MB; memory levels seen: {', '.join(summary['levels_seen'])}\n")
    a, b = summary["rss_median_8_12s"], summary["rss_median_last_5s"]
    if a and b:
        print(f"RSS, median of seconds 8–12 → median of the last 5: {mb(a):.1f} → {mb(b):.1f} MB ({(b / a - 1) * 100:+.1f} %)\n")
    h0, h1 = summary["held_at_10s"], summary["held_at_end"]
    if h0 and h1:
        print(f"Stores at 10 s → at the end (`/memory-status` `held`): Tally record {h0['tally_events']} → {h1['tally_events']} "
              f"of {h1['tally_capacity']} events (a receipt each, not the response); "
              f"embedding cache {h0['embed_cache_entries']} → {h1['embed_cache_entries']} of {h1['embed_cache_capacity']} entries; "
              f"forward-pass buffers kept {mb(h0['pooled_scratch_bytes']):.1f} → {mb(h1['pooled_scratch_bytes']):.1f} MB\n")
    print("RSS per second (MB): " + " ".join(f"{mb(v):.0f}" for _, v in sorted(by_second.items())) + "\n")
    for label, r in summary["routes"].items():
        if r["unexpected"]:
            print(f"UNEXPECTED on {label}: {r['statuses']}")
    raise SystemExit(1 if summary["unexpected"] else 0)


if __name__ == "__main__":
    asyncio.run(main())
