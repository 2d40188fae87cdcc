# shellcheck shell=bash
# Shared by the operations rehearsals (scripts/ops/*.sh): PostgreSQL clusters of their own under
# .local/ops/ (never the test cluster of scripts/postgres.sh), each on 127.0.0.1 and a free port.
#
# Source it; it defines ROOT, OPS_DIR, BINDIR, RUN/as_owner, and the helpers below. As root (CI, this
# machine) PostgreSQL runs as the unprivileged user 'postgres' (created by Debian's package).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OPS_DIR="${BIANJIE_OPS_DIR:-$ROOT/.local/ops}"
BIANJIE="$ROOT/.venv/bin/bianjie"
PY="$ROOT/.venv/bin/python"

say() { echo "$(basename "$0"): $*" >&2; }
die() { say "$*"; exit 1; }
now() { date +%s.%N; }
elapsed() { python3 -c "print(round($(now) - $1, 2))"; }

find_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
        if [[ -x "$dir/pg_ctl" && -x "$dir/initdb" ]]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    return 1
}

# Debian's packages: the server and pgBackRest (installed when missing; a new machine has neither).
ensure_packages() {
    local missing=()
    find_bindir >/dev/null || missing+=(postgresql)
    command -v pgbackrest >/dev/null 2>&1 || missing+=(pgbackrest)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]} and I am not root: apt-get install ${missing[*]}"
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${missing[@]}" >&2
}

ensure_packages
BINDIR="$(find_bindir)" || die "PostgreSQL not found"

RUN=()
OS_USER="$(id -un)"
if [[ $(id -u) -eq 0 ]]; then
    OS_USER=postgres
    id "$OS_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$OS_USER"
    RUN=(runuser -u "$OS_USER" --)
fi
as_owner() { "${RUN[@]}" "$@"; }

# A folder the server user owns (0700), made fresh when asked: everything under OPS_DIR is ours.
own_dir() {
    mkdir -p "$1"
    chmod 700 "$1"
    [[ ${#RUN[@]} -eq 0 ]] || chown "$OS_USER" "$1"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# init_node DATA PORT: a new cluster with data checksums (pg_rewind and pgBackRest's checks need them),
# listening on 127.0.0.1:PORT and a socket in DATA/../sock, trust auth for local connections only.
init_node() {
    local data="$1" port="$2" sock
    sock="$(dirname "$data")/sock"
    own_dir "$(dirname "$data")"
    own_dir "$sock"
    rm -rf "$data"
    own_dir "$data"
    as_owner "$BINDIR/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --data-checksums \
        >"$(dirname "$data")/initdb.log" 2>&1 || { cat "$(dirname "$data")/initdb.log" >&2; die "initdb failed"; }
    cat >>"$data/postgresql.conf" <<CONF

# bianjie operations rehearsal (scripts/ops): a cluster of its own, on loopback only
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
max_connections = 200
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 256MB
wal_log_hints = on
hot_standby = on
CONF
    cat >"$data/pg_hba.conf" <<CONF
local   all          all                 trust
host    all          all   127.0.0.1/32  trust
local   replication  all                 trust
host    replication  all   127.0.0.1/32  trust
CONF
}

pg_start() {  # pg_start DATA
    local log
    log="$(dirname "$1")/server.log"
    touch "$log"
    [[ ${#RUN[@]} -eq 0 ]] || chown "$OS_USER" "$log"
    as_owner "$BINDIR/pg_ctl" -D "$1" -l "$log" -w -t 120 start >/dev/null \
        || { tail -n 30 "$log" >&2; die "could not start the cluster in $1"; }
}

pg_stop() {  # pg_stop DATA [mode]: stop it if it runs
    if [[ -f "$1/postmaster.pid" ]] && as_owner "$BINDIR/pg_ctl" -D "$1" status >/dev/null 2>&1; then
        as_owner "$BINDIR/pg_ctl" -D "$1" -m "${2:-fast}" -w -t 60 stop >/dev/null || true
    fi
}

psql_at() {  # psql_at PORT [psql args]: as the superuser on the database bianjie (or -d)
    local port="$1"
    shift
    "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"
}

dsn_at() { echo "postgresql://postgres@127.0.0.1:$1/${2:-bianjie}"; }
