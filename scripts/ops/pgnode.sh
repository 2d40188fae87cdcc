#!/usr/bin/env bash
# One PostgreSQL node of a primary/standby pair: the documented manual failover (issue 20, 实时热备),
# used by scripts/ops/failover.sh and by an operator (docs/operations/standby-failover.md).
#
#   scripts/ops/pgnode.sh promote DATA                        make this standby the primary (pg_ctl promote)
#   scripts/ops/pgnode.sh start DATA --peers H:P[,H:P...]     start a node, FENCED: a node that would come up
#                                                             as primary while a peer already is one is refused
#   scripts/ops/pgnode.sh rejoin DATA --primary H:P [--name N] an old primary back as a standby of the new one
#                                                             (pg_rewind, standby.signal, primary_conninfo)
#   scripts/ops/pgnode.sh role H:P                            primary | standby | down
#
# Fencing: a node without standby.signal starts as a primary. `start` asks every peer first and refuses
# (exit 3, FENCED) when one answers as primary, so an old primary restarted after a failover cannot take
# writes; `rejoin` is the way back. Run the server's service through `start` (systemd: ExecStart of the
# unit, infra/onprem/). As root the server runs as the user 'postgres'.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

role_of() {  # role_of HOST:PORT
    local host="${1%:*}" port="${1##*:}" answer
    if ! answer="$("$BINDIR/psql" -X -tA -h "$host" -p "$port" -U postgres -d postgres \
        -c "SELECT pg_is_in_recovery()" 2>/dev/null)"; then
        echo down
    elif [[ "$answer" == f ]]; then
        echo primary
    else
        echo standby
    fi
}

cmd="${1:-}"
shift || true
case "$cmd" in
role)
    role_of "$1"
    ;;
promote)
    data="$1"
    [[ -f "$data/standby.signal" ]] || die "$data is not a standby (no standby.signal)"
    as_owner "$BINDIR/pg_ctl" -D "$data" -w -t 60 promote >/dev/null
    say "promoted $data"
    ;;
start)
    data="$1"
    shift
    peers=""
    while [[ $# -gt 0 ]]; do
        case "$1" in
        --peers) peers="$2"; shift 2 ;;
        *) die "unknown option $1" ;;
        esac
    done
    if [[ ! -f "$data/standby.signal" ]]; then
        IFS=, read -r -a list <<<"$peers"
        for peer in "${list[@]}"; do
            [[ -n "$peer" ]] || continue
            if [[ "$(role_of "$peer")" == primary ]]; then
                echo '{"error": "FENCED", "message": "另一节点已是主库：本节点不得以主库身份启动，请用 rejoin 作为备库重新加入"}' >&2
                exit 3
            fi
        done
    fi
    pg_start "$data"
    say "started $data"
    ;;
rejoin)
    data="$1"
    shift
    primary="" name="$(basename "$(dirname "$data")")"
    while [[ $# -gt 0 ]]; do
        case "$1" in
        --primary) primary="$2"; shift 2 ;;
        --name) name="$2"; shift 2 ;;
        *) die "unknown option $1" ;;
        esac
    done
    [[ -n "$primary" ]] || die "rejoin needs --primary HOST:PORT"
    [[ "$(role_of "$primary")" == primary ]] || die "$primary does not answer as primary"
    pg_stop "$data" fast
    host="${primary%:*}" port="${primary##*:}"
    # back to the new primary's timeline: pg_rewind replays a crashed node to a clean state first. It
    # copies the source's configuration files too: this node's own are kept aside and put back.
    keep="$(dirname "$data")/conf.keep"
    own_dir "$keep"
    cp -p "$data/postgresql.conf" "$data/postgresql.auto.conf" "$data/pg_hba.conf" "$keep/"
    as_owner "$BINDIR/pg_rewind" -D "$data" --source-server="host=$host port=$port user=postgres dbname=postgres" \
        >"$(dirname "$data")/rewind.log" 2>&1 || { cat "$(dirname "$data")/rewind.log" >&2; die "pg_rewind failed"; }
    cp -p "$keep/postgresql.conf" "$keep/postgresql.auto.conf" "$keep/pg_hba.conf" "$data/"
    as_owner touch "$data/standby.signal"
    # its own settings stay (port, socket); the primary's sync setting is not a standby's business
    as_owner bash -c "cat >>'$data/postgresql.auto.conf'" <<CONF
primary_conninfo = 'host=$host port=$port user=postgres application_name=$name'
synchronous_standby_names = ''
CONF
    pg_start "$data"
    say "$data rejoined as a standby of $primary"
    ;;
*)
    die "usage: $0 promote DATA | start DATA --peers H:P,... | rejoin DATA --primary H:P | role H:P"
    ;;
esac
