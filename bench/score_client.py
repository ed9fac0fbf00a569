"""Times /score and /rank against a running snapembed (see bench/score.sh). Standard library only.

The resume is the eval set's two longest resumes joined and cut to 1,000 words; the job is
backend-go.md (312 words). "Cold" requests make every text new to the server by tagging each
line with the request's number (so an embedding cache cannot help); "warm" repeats one request.
"""
import argparse, http.client, json, os, pathlib, statistics, time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--data", required=True)
p.add_argument("--kernels", default="auto")
p.add_argument("--runs", type=int, default=20)
p.add_argument("--rank-runs", type=int, default=3)
p.add_argument("--pid", type=int, help="the server's pid: also report its CPU time per request, which a busy machine does not inflate")
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
TICK = os.sysconf("SC_CLK_TCK")


def cpu_ms():
    if not a.pid:
        return 0.0
    f = open(f"/proc/{a.pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1e3 / TICK


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
c0 = cpu_ms()
cold = [post("/score", {"resume": tagged(resume, i), "job_description": tagged(job.splitlines(), i)})[0] for i in range(a.runs)]
cold_cpu = (cpu_ms() - c0) / a.runs
body = {"resume": "\n".join(resume), "job_description": job}
post("/score", body)
c0 = cpu_ms()
warm = [post("/score", body)[0] for _ in range(a.runs)]
warm_cpu = (cpu_ms() - c0) / a.runs
resumes = sorted((data / "resumes").glob("*/*.txt"))
texts = [(f"{f.parent.name}/{f.stem}#{k}", f.read_text().splitlines()) for k in range(2) for f in resumes][:100]
rank = []
c0 = cpu_ms()
for i in range(a.rank_runs):
    batch = [{"id": rid, "text": tagged(ls, 1000 * (i + 1) + n)} for n, (rid, ls) in enumerate(texts)]
    rank.append(post("/rank", {"job_description": tagged(job.splitlines(), 1000 + i), "resumes": batch})[0])
rank_cpu = (cpu_ms() - c0) / max(1, a.rank_runs)
print("| kernels | resume words | /score cold, median ms (server CPU ms) | /score warm, median ms (server CPU ms) | /rank 100 resumes, median ms (server CPU ms) |")
print(f"| {a.kernels} | {words} | {statistics.median(cold):.1f} ({cold_cpu:.0f}) | {statistics.median(warm):.1f} ({warm_cpu:.0f}) | {statistics.median(rank):.0f} ({rank_cpu:.0f}) |")
