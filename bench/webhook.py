"""The Tally webhook end to end at 100,000 documents (issue 8): verify the signature, parse the
delivery, embed the answers, search the index, respond. One release server (`--threads 1`,
`--tally-signing-secret`) over the synthetic index that `bench/search.sh` writes; each delivery
is the committed fixture with a new eventId (so the replay guard never short-cuts it) and a
new question (so the embedding cache never answers it). Only the standard library.

Usage: python3 bench/webhook.py --bin target/release/snapembed --index bench/out/search/synthetic.idx [--runs 300]
Prints a Markdown table; results go in bench/results/search.md by hand with the machine's load.
"""
import argparse, base64, hashlib, hmac, http.client, json, socket, statistics, subprocess, time, uuid
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("--index", required=True)
ap.add_argument("--runs", type=int, default=300)
args = ap.parse_args()
root = Path(__file__).resolve().parent.parent
fixture = json.loads((root / "tests/data/tally/support_request.json").read_text())
SECRET = "bench-secret"
TOPICS = ["refund", "invoice", "password", "export", "webhook", "billing", "team", "storage", "login", "API"]

s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
server = subprocess.Popen([args.bin, "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", "1",
                           "--corpus", args.index, "--tally-signing-secret", SECRET],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    load_before = open("/proc/loadavg").read().split()[:3]
    times, statuses = [], {}
    for i in range(args.runs + 10):
        d = json.loads(json.dumps(fixture))
        d["eventId"] = str(uuid.uuid4())
        for f in d["data"]["fields"]:
            if f.get("type") in ("TEXTAREA", "INPUT_TEXT") and isinstance(f.get("value"), str):
                f["value"] = f"{f['value']} ({TOPICS[i % len(TOPICS)]} question {i})"
        body = json.dumps(d).encode()
        sig = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
        t = time.perf_counter()
        conn.request("POST", "/webhook/tally", body, {"Content-Type": "application/json", "Tally-Signature": sig})
        r = conn.getresponse(); r.read()
        ms = (time.perf_counter() - t) * 1e3
        statuses[r.status] = statuses.get(r.status, 0) + 1
        if i >= 10:  # the first ten warm the connection and the page cache
            times.append(ms)
    times.sort()
    p99 = times[round((len(times) - 1) * 0.99)]
    load_after = open("/proc/loadavg").read().split()[:3]
    print(f"Load average {' '.join(load_before)} before, {' '.join(load_after)} after; statuses {statuses}.\n")
    print("| | median ms | p99 ms |\n|---|---:|---:|")
    print(f"| `POST /webhook/tally`, signed, {args.runs} deliveries, 100k-document index, `--threads 1` | {statistics.median(times):.2f} | {p99:.2f} |")
finally:
    server.kill(); server.wait()
