#!/usr/bin/env bash
# The soak run: the release server under 50 concurrent clients for 60 s, good requests (/embed,
# /search, /webhook/tally, /score) mixed with bad ones, RSS every second; then the same under
# `--memory-limit-mb 96`, where the memory guard's stages must engage and nothing may die.
# Results: bench/results/soak.md (the raw JSON and server logs in bench/out/soak/).
# Usage: bench/soak.sh [--duration S] [--clients N] [--no-build]
#
# The client is Python asyncio + aiohttp (a venv under bench/): one process holds 50 keep-alive
# connections, checks every answer's status against what that request must get, and keeps
# latencies per route, which wrk's single latency histogram does not.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv="$here/.venv-soak"
duration=60
clients=50
build=1
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "usage: bench/soak.sh [--duration S] [--clients N] [--no-build]" >&2; exit 2 ;;
  esac
done
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import aiohttp" 2>/dev/null || "$venv/bin/python" -m pip install --quiet aiohttp
[ "$build" -eq 0 ] || (cd "$root" && cargo build --release --quiet -p snapembed)
bin=$root/target/release/snapembed
out=$here/out/soak
mkdir -p "$out"
md=$out/soak.md.tmp
failed=0

# run NAME TITLE CLIENT-FLAGS -- SERVER-FLAGS...
run() {
  local name=$1 title=$2 client_flags=$3; shift 4
  local port pid status
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  RUST_LOG=info "$bin" serve --host 127.0.0.1 --port "$port" "$@" > "$out/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.1; done
  # shellcheck disable=SC2086
  "$venv/bin/python" "$here/soak.py" --url "http://127.0.0.1:$port" --pid "$pid" --clients "$clients" \
    --duration "$duration" --out "$out/$name.json" --title "$title" $client_flags >> "$md" || failed=1
  {
    echo "Server flags: \`serve $*\`. After the run:"
    echo
    echo '```'
    if kill -0 "$pid" 2>/dev/null && curl -s "http://127.0.0.1:$port/health"; then echo; else echo "NOT ALIVE"; failed=1; fi
    curl -s "http://127.0.0.1:$port/memory-status" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("memory-status: level", d["level"], "limit", d["limit_bytes"]//1048576, "MB", d["limit_source"], "rss", d["process_rss_bytes"]//1048576, "MB", "checks", d["checks"]); [print("  ", t["at"], t["from"], "->", t["to"], "rss", t["rss_before_bytes"]//1048576, "->", t["rss_after_bytes"]//1048576, "MB", "freed", t["freed"]) for t in d["last_cleanups"]]'
    echo '```'
    echo
  } >> "$md"
  kill -TERM "$pid"
  status=0; wait "$pid" || status=$?
  {
    echo "Exit status after SIGTERM: $status (137 would be a SIGKILL, as from the OOM killer)."
    echo
    echo "Memory guard log lines ($(grep -c 'memory level\|memory guard\|cleanup' "$out/$name.log" || true) in all; the first 8):"
    echo
    echo '```'
    { grep -i 'memory level\|memory guard\|cleanup' "$out/$name.log" || true; } | head -8 | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-300
    echo '```'
    echo
  } >> "$md"
  [ "$status" -eq 0 ] || failed=1
}

{
  echo "# Soak"
  echo
  echo "\`bench/soak.sh\`, $(date -u '+%Y-%m-%d %H:%M UTC'); release build; $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), shared with other engineers' builds."
  echo
  echo "\`uptime\` before: $(uptime)"
  echo
  echo "Mix per client, drawn at random: /embed one text 30, /embed 8 texts 8, /search 20, /webhook/tally 8 (a new eventId each, no signing secret), /score 3;"
  echo "bad input 22: malformed JSON (400), a 3 MB body (413), wrong types (422), no Content-Type (415), 65 inputs (413). Texts from artifacts/sample-corpus.jsonl; the embedding cache (2,000 entries) is on."
  echo
} > "$md"
run normal "50 clients, 60 s, default budget" "" -- 
run limited "50 clients, 60 s, --memory-limit-mb 96" "--allow-503" -- --memory-limit-mb 96
{
  echo "\`uptime\` after: $(uptime)"
  echo
} >> "$md"
mv "$md" "$here/results/soak.md"
cat "$here/results/soak.md"
exit $failed
