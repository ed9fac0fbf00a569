#!/usr/bin/env bash
# Schemathesis against the real server with the server's own /openapi.json (called by
# tests/run.sh after `cargo test`; runs alone too: tests/tools/contract.sh VENV [BINARY]).
#
# The server runs as `snapembed serve` would by default: the embedded model and sample corpus,
# so /search and the webhook reach the real search. No Tally signing secret: with one, every
# generated delivery would stop at the 401 (schemathesis cannot sign), and the payload parser
# and the search behind it would go unexercised; the signature check has its own tests.
#
# Checks: no 5xx, every status and content type documented, every body and header as its
# schema says; then the server must still answer /health. SNAPEMBED_SCHEMATHESIS_EXAMPLES (per
# operation, default 60) and SNAPEMBED_SCHEMATHESIS_SEED (default fixed, so CI is repeatable)
# bound the run: about 1,000 requests in 1-2 minutes on the loaded 2-core machine this was
# written on.
set -euo pipefail
venv=$(cd "${1:?usage: contract.sh VENV [BINARY]}" && pwd)
bin=$(realpath "${2:-target/debug/snapembed}")
examples=${SNAPEMBED_SCHEMATHESIS_EXAMPLES:-60}
seed=${SNAPEMBED_SCHEMATHESIS_SEED:-20261130}
out=$(dirname "$venv")/schemathesis
mkdir -p "$out"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --host 127.0.0.1 --port "$port" > "$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.1; done

status=0
# One worker: with two threads, CPython 3.11's ast.parse (which hypothesis calls to describe its
# strategies) failed now and then with "AST constructor recursion depth mismatch" (gh-106905).
(cd "$out" && timeout 300 "$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --max-examples "$examples" --seed "$seed" --workers 1 --request-timeout 60 \
  --generation-database none --no-color --report junit --report-dir "$out") || status=$?

if ! kill -0 $server 2>/dev/null || ! curl -sf "http://127.0.0.1:$port/health" > /dev/null; then
  echo "contract.sh: the server did not survive schemathesis (log: $out/server.log)" >&2
  tail -20 "$out/server.log" >&2
  exit 1
fi
if grep -q "panicked" "$out/server.log"; then
  echo "contract.sh: a handler panicked (log: $out/server.log)" >&2
  grep -m5 "panicked" "$out/server.log" >&2
  exit 1
fi
[ "$status" -eq 0 ] || { echo "contract.sh: schemathesis found failures (report: $out)" >&2; exit "$status"; }
echo "contract.sh: schemathesis passed; the server is still healthy"
