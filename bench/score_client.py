"""Times /score and /rank against a running snapembed (see bench/score.sh). Standard library only.

The resume is the eval set's two longest resumes joined and cut to 1,000 words; the job is
backend-go.md (312 words). "Cold" requests make every text new to the server by tagging each
line with the request's number (so an embedding cache cannot help); "warm" repeats one request.
"""
import argparse, http.client, json, pathlib, statistics, time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--data", required=True)
p.add_argument("--kernels", default="auto")
p.add_argument("--runs", type=int, default=20)
a = p.parse_args()
data = pathlib.Path(a.data)
job = (data / "jobs" / "backend-go.md").read_text()
lines = (data / "resumes/backend-go/r01.txt").read_text().splitlines() + (data / "resumes/sre-platform/r02.txt").read_text().splitlines()
resume, words = [], 0
for line in lines:
    n = len(line.split())
    if words + n > 1000:
        break
    resume.append(line)
    words += n
conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=600)


def post(path, body):
    t = time.perf_counter()
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    payload = r.read()
    ms = (time.perf_counter() - t) * 1e3
    assert r.status == 200, (r.status, payload[:300])
    return ms, json.loads(payload)


def tagged(lines, i):
    return "\n".join(f"{l} r{i}" if l.strip() else l for l in lines)


post("/score", {"resume": "warm-up text about Go services", "job_description": "Go developer needed"})
cold = [post("/score", {"resume": tagged(resume, i), "job_description": tagged(job.splitlines(), i)})[0] for i in range(a.runs)]
body = {"resume": "\n".join(resume), "job_description": job}
post("/score", body)
warm = [post("/score", body)[0] for _ in range(a.runs)]
resumes = sorted((data / "resumes").glob("*/*.txt"))
texts = [(f"{f.parent.name}/{f.stem}#{k}", f.read_text().splitlines()) for k in range(2) for f in resumes][:100]
rank = []
for i in range(3):
    batch = [{"id": rid, "text": tagged(ls, 1000 * (i + 1) + n)} for n, (rid, ls) in enumerate(texts)]
    rank.append(post("/rank", {"job_description": tagged(job.splitlines(), 1000 + i), "resumes": batch})[0])
print(f"| {a.kernels} | {words} | {statistics.median(cold):.1f} (p90 {sorted(cold)[int(0.9 * len(cold)) - 1]:.1f}) | {statistics.median(warm):.1f} | {statistics.median(rank):.0f} |")
