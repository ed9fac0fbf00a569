#!/usr/bin/env bash
# The scorer's benchmark: `POST /score` for a 2-page resume (~1,000 words) against a ~300-word
# job description, cold (every text new to the server) and warm (the same request again), on
# one thread; then `POST /rank` of 100 resumes. Once with the default kernels and once with
# avx2+fma (the path most Lambda x86 CPUs take). Only the standard library on the client side.
# Usage: [SNAPEMBED_BIN=path] bench/score.sh [--no-build]   (writes its table to stdout; results go in
# bench/results/scorer.md by hand, with the machine's load)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# SCORE_BENCH_ARGS passes client options (--runs N, --rank-runs N).
# SNAPEMBED_BIN picks another build (the dev profile, when a release build is too slow to wait for).
bin="${SNAPEMBED_BIN:-$root/target/release/snapembed}"
[ "${1:-}" = "--no-build" ] || [ -n "${SNAPEMBED_BIN:-}" ] || (cd "$root" && cargo build --release --quiet -p snapembed)
echo "machine: $(nproc) vCPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for kernels in auto avx2+fma; do
  port=$((20000 + RANDOM % 20000))
  "$bin" serve --host 127.0.0.1 --port "$port" --threads 1 --kernels "$kernels" >/dev/null 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  python3 "$here/score_client.py" --port "$port" --data "$root/tests/data/scorer_eval" --kernels "$kernels" --pid "$pid" ${SCORE_BENCH_ARGS:-}
  kill "$pid"; wait "$pid" 2>/dev/null || true
  trap - EXIT
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
