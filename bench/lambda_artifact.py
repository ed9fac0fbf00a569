#!/usr/bin/env python3
"""What a Lambda user pays for the SAM-built artifact: its deployment zip size, and exec → first
response of `bootstrap` against a fake Lambda Runtime API on 127.0.0.1, over fresh processes.

Usage: lambda_artifact.py BOOTSTRAP [--runs 10] [--out bench/results/lambda.md]

Each run copies nothing: it empties the page cache first (`/proc/sys/vm/drop_caches` where this
machine allows it, else `posix_fadvise(DONTNEED)` on the binary; the report says which), starts
`bootstrap` alone in an empty directory with Lambda's environment and no arguments, serves it
one Function URL event (`POST /embed`, one short text), and stops the clock when the function
posts its response. That is Lambda's init plus the first invocation, without Lambda's own
sandbox start-up, which no function can influence."""
import argparse, base64, http.server, json, os, shutil, statistics, subprocess, sys, tempfile
import threading, time, zipfile

EVENT = {
    "version": "2.0", "routeKey": "$default", "rawPath": "/embed", "rawQueryString": "",
    "headers": {"content-type": "application/json", "host": "abc.lambda-url.us-east-1.on.aws"},
    "requestContext": {"accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
                       "domainPrefix": "abc", "http": {"method": "POST", "path": "/embed", "protocol": "HTTP/1.1",
                       "sourceIp": "198.51.100.23", "userAgent": "bench"}, "requestId": "r", "routeKey": "$default",
                       "stage": "$default", "time": "30/Nov/2026:16:00:00 +0000", "timeEpoch": 1796054400000},
    "body": base64.b64encode(json.dumps({"inputs": "How do I reset my password?"}).encode()).decode(),
    "isBase64Encoded": True,
}


class Runtime(http.server.BaseHTTPRequestHandler):
    """The two calls of Lambda's Runtime API a function makes on its first invocation."""
    protocol_version = "HTTP/1.1"
    served = False

    def log_message(self, *a):
        pass

    def do_GET(self):
        if not self.path.endswith("/invocation/next") or Runtime.served:
            time.sleep(3600)  # Lambda freezes the function between invocations
            return
        Runtime.served = True
        body = json.dumps(EVENT).encode()
        self.send_response(200)
        for k, v in [("Content-Type", "application/json"), ("Lambda-Runtime-Aws-Request-Id", "req-0"),
                     ("Lambda-Runtime-Deadline-Ms", "9999999999999"),
                     ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:snapembed"),
                     ("Content-Length", str(len(body)))]:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(n)
        self.server.posted.append((time.perf_counter(), self.path, body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the killed function's open `next` connection resets: expected, not news


def empty_page_cache(binary):
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return "emptied (drop_caches)"
    except OSError:
        fd = os.open(binary, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        return "binary evicted (posix_fadvise)"


def one_run(binary, cold):
    Runtime.served = False
    server = Server(("127.0.0.1", 0), Runtime)
    server.posted = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    task = tempfile.mkdtemp()
    env = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
           "AWS_LAMBDA_FUNCTION_NAME": "snapembed", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
           "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_REGION": "us-east-1",
           "LAMBDA_TASK_ROOT": task, "_HANDLER": "bootstrap"}
    cache = empty_page_cache(binary) if cold else "warm"
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], cwd=task, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not server.posted and time.perf_counter() - t0 < 30:
        time.sleep(0.0002)
    p.kill(); p.wait(); server.shutdown(); shutil.rmtree(task)
    if not server.posted:
        sys.exit("no response from the function within 30 s")
    t1, path, body = server.posted[0]
    resp = json.loads(body)
    assert path.endswith("/req-0/response") and resp["statusCode"] == 200, (path, body[:200])
    assert len(json.loads(resp["body"])[0]) == 384
    return (t1 - t0) * 1e3, cache


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--out")
    a = ap.parse_args()
    binary = os.path.abspath(a.bootstrap)
    with tempfile.TemporaryDirectory() as d:
        z = os.path.join(d, "function.zip")
        with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            zf.write(binary, "bootstrap")
        zipped = os.path.getsize(z)
    unzipped = os.path.getsize(binary)
    rows = {}
    for cold in (True, False):
        one_run(binary, cold)  # settle: first use of the copy, the server's socket
        times, how = [], None
        for _ in range(a.runs):
            ms, how = one_run(binary, cold)
            times.append(ms)
        rows["cold" if cold else "warm"] = (statistics.median(times), min(times), max(times), how)
    load = open("/proc/loadavg").read().split()[:3]
    lines = [
        f"# Lambda artifact (`sam build --beta-features`), measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Machine: {os.cpu_count()} vCPUs, load average {' '.join(load)} at the end of the run.",
        "",
        "| what | value |", "|---|---:|",
        f"| `bootstrap` unzipped | {unzipped / 1e6:.1f} MB (Lambda's limit: 250 MB) |",
        f"| deployment zip (deflate -9) | {zipped / 1e6:.1f} MB (Lambda's limit: 50 MB) |",
    ]
    for k, (med, lo, hi, how) in rows.items():
        lines.append(f"| exec → first `/embed` response, page cache {how}, median of {a.runs} | {med:.1f} ms (min {lo:.1f}, max {hi:.1f}) |")
    report = "\n".join(lines) + "\n"
    print(report)
    if a.out:
        with open(a.out, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
