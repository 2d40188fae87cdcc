#!/usr/bin/env bash
# A throwaway PostgreSQL for tests and the on-premises flavour of the local stack.
#
#   scripts/postgres.sh          install if missing, init, start; print the DSN (last line of stdout)
#   scripts/postgres.sh stop     stop it
#   scripts/postgres.sh dsn      print the DSN only
#
# Environment: BIANJIE_PG_DIR (default .local/pg), BIANJIE_PG_PORT (default 54329).
# Idempotent: a running cluster is reused. Only 127.0.0.1 listens, with trust auth, and durability
# is switched off for speed: never point this at data you want to keep.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE="${BIANJIE_PG_DIR:-$ROOT/.local/pg}"
DB=bianjie
SUPERUSER=postgres
DATA="$BASE/data"
LOG="$BASE/server.log"

say() { echo "postgres.sh: $*" >&2; }
die() { say "$*"; exit 1; }

find_bindir() {
    local dir
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    # Debian keeps the server binaries off PATH; take the newest installed major version.
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
        if [[ -x "$dir/pg_ctl" && -x "$dir/initdb" ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

install_postgres() {
    [[ $(id -u) -eq 0 ]] || die "PostgreSQL is not installed and I am not root; install the 'postgresql' package"
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and apt-get is missing; install it by hand"
    say "installing PostgreSQL with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
}

BINDIR="$(find_bindir || true)"
if [[ -z "$BINDIR" && "${1:-start}" != stop ]]; then
    install_postgres
    BINDIR="$(find_bindir)" || die "PostgreSQL still not found after installing"
fi

# PostgreSQL refuses to run as root: as root, run it as a dedicated unprivileged user.
RUN=()
if [[ $(id -u) -eq 0 ]]; then
    if id postgres >/dev/null 2>&1; then
        RUNUSER=postgres
    else
        RUNUSER=bianjie-pg
        id "$RUNUSER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$RUNUSER"
    fi
    RUN=(runuser -u "$RUNUSER" --)
fi
as_owner() { "${RUN[@]}" "$@"; }

mkdir -p "$BASE"
[[ ${#RUN[@]} -eq 0 ]] || chown "$RUNUSER" "$BASE"

# One caller at a time (parallel test workers all call this).
exec 9>"$BASE/lock"
flock 9

running() { [[ -f "$DATA/PG_VERSION" ]] && as_owner "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# The cluster keeps the port it first got (in $BASE/port); a new cluster takes BIANJIE_PG_PORT or 54329,
# or any free port when another checkout's cluster already holds that one.
if [[ -f "$BASE/port" ]]; then
    PORT="$(cat "$BASE/port")"
elif running; then
    PORT="$(sed -n 4p "$DATA/postmaster.pid")"  # a cluster started before ports were recorded
    echo "$PORT" >"$BASE/port"
else
    PORT="${BIANJIE_PG_PORT:-54329}"
    if port_taken "$PORT"; then
        PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    fi
    echo "$PORT" >"$BASE/port"
fi
DSN="postgresql://$SUPERUSER@127.0.0.1:$PORT/$DB"

case "${1:-start}" in
stop)
    if [[ -n "$BINDIR" ]] && running; then
        as_owner "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >&2
    else
        say "not running"
    fi
    exit 0
    ;;
dsn)
    echo "$DSN"
    exit 0
    ;;
start) ;;
*) die "usage: $0 [start|stop|dsn]" ;;
esac

if ! running; then
    if [[ ! -f "$DATA/PG_VERSION" ]]; then
        rm -rf "$DATA"
        mkdir -p "$DATA"
        [[ ${#RUN[@]} -eq 0 ]] || chown "$RUNUSER" "$DATA"
        as_owner test -w "$DATA" || die "$RUNUSER cannot write $DATA (is a parent directory closed to it?)"
        # An ICU default collation that is not byte order (as on a hospital server with zh_CN),
        # so the tests prove the adapter's explicit COLLATE "C" rather than the machine's locale.
        locale_args=(--locale=C.UTF-8 --locale-provider=icu --icu-locale=zh)
        if ! as_owner "$BINDIR/initdb" --help | grep -q -- --locale-provider; then
            locale_args=(--locale=C.UTF-8)
        fi
        say "initialising $DATA"
        as_owner "$BINDIR/initdb" -D "$DATA" -U "$SUPERUSER" --auth=trust -E UTF8 "${locale_args[@]}" >"$BASE/initdb.log" 2>&1 \
            || { cat "$BASE/initdb.log" >&2; die "initdb failed"; }
        cat >>"$DATA/postgresql.conf" <<EOF

# bianjie throwaway test cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    fi
    touch "$LOG"
    [[ ${#RUN[@]} -eq 0 ]] || chown "$RUNUSER" "$LOG"
    say "starting on 127.0.0.1:$PORT"
    # 9>&-: the server must not inherit the lock, or it would hold it for its whole life.
    as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -o "-p $PORT" -w -t 60 start >&2 9>&- \
        || { tail -n 20 "$LOG" >&2; die "could not start PostgreSQL (log: $LOG)"; }
fi

psql_() { as_owner "$BINDIR/psql" -X -q -h 127.0.0.1 -p "$PORT" -U "$SUPERUSER" "$@"; }
if [[ "$(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]]; then
    psql_ -d postgres -c "CREATE DATABASE $DB" >&2
fi
echo "$DSN"
