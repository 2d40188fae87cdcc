#!/usr/bin/env bash
# Rehearsal of the hot standby and failover (issue 20, 实时热备), end to end on this machine:
# docs/operations/standby-failover.md.
#
#   scripts/ops/failover.sh [--short] [--bench]
#
# 1. node1 (primary) and node2 (a standby by streaming replication, pg_basebackup, a replication slot),
#    each a cluster of its own under .local/ops/failover/ on a free port; the tables from `bianjie db
#    migrate`. synchronous_standby_names = node2 with the cluster's default synchronous_commit = local:
#    payment and prescription writes ask for synchronous_commit = on on their own connections (their
#    DSN's options), so they are acknowledged only once on the standby; other writes are not held up;
# 2. --bench: the cost of that, measured by the pay benchmark (scripts/bench/pay.py, a short run) on
#    node1 twice, every write local, then every write synchronous; the lag sampled during both;
# 3. a writer (`bianjie ops load`: pay and rx documents, each with its audit record, synchronous commit)
#    through a libpq multi-host DSN (node1,node2, target_session_attrs=read-write), keeping every
#    acknowledged key; the replay lag sampled from pg_stat_replication meanwhile;
# 4. mid-write, node1's postmaster and its backends are killed with SIGKILL; a monitor notices (3 missed
#    probes 0.2 s apart) and promotes node2 (scripts/ops/pgnode.sh promote); the writer's pool
#    reconnects by itself through the DSN;
# 5. RPO: acknowledged keys missing on node2 (must be 0); RTO: kill to the first acknowledged write
#    after it; every audit chain verified on node2;
# 6. fencing: node1 started through `pgnode.sh start --peers node2` is refused (node2 is primary); then
#    `pgnode.sh rejoin` brings it back as a standby (pg_rewind), where a write is refused (read-only).
# Last line: one JSON object with lag_ms_p99, rpo_writes_lost, rto_s (and the rest). Leaves nothing running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOAD_S=40 KILL_AT=15 BENCH=0
for arg in "$@"; do
    case "$arg" in
    --short) LOAD_S=14 KILL_AT=5 ;;
    --bench) BENCH=1 ;;
    *) die "usage: $0 [--short] [--bench]" ;;
    esac
done
BASE="$OPS_DIR/failover"
N1="$BASE/node1/data"
N2="$BASE/node2/data"
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    pg_stop "$N1" immediate
    pg_stop "$N2" immediate
}
trap cleanup EXIT

pg_stop "$N1" immediate 2>/dev/null || true
pg_stop "$N2" immediate 2>/dev/null || true
rm -rf "$BASE"
own_dir "$BASE"
P1="$(free_port)"
P2="$(free_port)"
while [[ "$P2" == "$P1" ]]; do P2="$(free_port)"; done

init_node "$N1" "$P1"
pg_start "$N1"
psql_at "$P1" -d postgres -c "CREATE DATABASE bianjie"
"$BIANJIE" db migrate --dsn "$(dsn_at "$P1")" >"$BASE/migrate.log"
psql_at "$P1" -d postgres -c "SELECT pg_create_physical_replication_slot('node2')" >/dev/null

own_dir "$BASE/node2"
own_dir "$BASE/node2/sock"
as_owner "$BINDIR/pg_basebackup" -h 127.0.0.1 -p "$P1" -U postgres -D "$N2" -X stream -c fast -R -S node2
chmod 700 "$N2"
as_owner bash -c "cat >>'$N2/postgresql.auto.conf'" <<CONF
port = $P2
unix_socket_directories = '$BASE/node2/sock'
primary_conninfo = 'host=127.0.0.1 port=$P1 user=postgres application_name=node2'
primary_slot_name = 'node2'
CONF
pg_start "$N2"

psql_at "$P1" -d postgres -c "ALTER SYSTEM SET synchronous_standby_names = 'node2'" \
    -c "ALTER SYSTEM SET synchronous_commit = 'local'" -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 100); do
    state="$(psql_at "$P1" -d postgres -tAc "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'node2'")"
    [[ "$state" == sync ]] && break
    sleep 0.1
done
[[ "$state" == sync ]] || die "node2 is not a synchronous standby (state: '$state')"
say "node1 primary on $P1, node2 synchronous standby on $P2"

# -- the cost of synchronous replication, with the pay benchmark (short runs) --------------------------
bench_local="null" bench_sync="null" bench_lag="null"
if [[ $BENCH -eq 1 ]]; then
    echo "$P1" >"$BASE/node1/port"  # scripts/postgres.sh's layout: the benchmark reuses this cluster
    run_bench() {  # run_bench MODE: MODE = local | on
        "$PY" "$ROOT/scripts/ops/lag_sampler.py" "$(dsn_at "$P1" postgres)" "$BASE/lag-bench-$1.json" >/dev/null &
        local sampler=$!
        PGOPTIONS="-c synchronous_commit=$1" BIANJIE_PG_DIR="$BASE/node1" BIANJIE_PG_PORT="$P1" \
            "$PY" "$ROOT/scripts/bench/pay.py" --documents postgres --workers 2 --charges 100 --serial 20 \
            --patients 10 --storm 0 --sustained-seconds 0 >"$BASE/bench-$1.out" 2>"$BASE/bench-$1.err" \
            || { tail -n 20 "$BASE/bench-$1.err" >&2; die "pay benchmark ($1) failed"; }
        kill "$sampler"
        wait "$sampler" || true
        tail -n 1 "$BASE/bench-$1.out"
    }
    bench_local="$(run_bench local)"
    bench_sync="$(run_bench on)"
    bench_lag="{\"local\": $(cat "$BASE/lag-bench-local.json"), \"sync\": $(cat "$BASE/lag-bench-on.json")}"
    say "pay benchmark: local $bench_local"
    say "pay benchmark: synchronous $bench_sync"
fi

# -- the cost per write: one writer thread, each write (document + audit record, one transaction) local,
# then acknowledged by the standby too
PLAIN="postgresql://postgres@127.0.0.1:$P1/bianjie"
"$BIANJIE" ops load --dsn "$PLAIN?options=-c%20synchronous_commit%3Dlocal" --seconds 3 --threads 1 --label cost-local \
    >"$BASE/cost-local.json"
"$BIANJIE" ops load --dsn "$PLAIN?options=-c%20synchronous_commit%3Don" --seconds 3 --threads 1 --label cost-sync \
    >"$BASE/cost-sync.json"
say "one write: local $(tail -n 1 "$BASE/cost-local.json"), synchronous $(tail -n 1 "$BASE/cost-sync.json")"

# -- failover under writes -----------------------------------------------------------------------------
# Clients name both nodes; libpq takes the first that accepts writes. Synchronous commit for these writes.
DSN="postgresql://postgres@127.0.0.1:$P1,127.0.0.1:$P2/bianjie?target_session_attrs=read-write&connect_timeout=2&options=-c%20synchronous_commit%3Don"
ACKED="$BASE/acked.txt"
: >"$ACKED"
"$PY" "$ROOT/scripts/ops/lag_sampler.py" "$(dsn_at "$P1" postgres)" "$BASE/lag-load.json" >/dev/null &
SAMPLER=$!
PIDS+=("$SAMPLER")
"$BIANJIE" ops load --dsn "$DSN" --seconds "$LOAD_S" --threads 4 --acked-file "$ACKED" >"$BASE/load.json" 2>"$BASE/load.err" &
WRITER=$!
PIDS+=("$WRITER")
sleep "$KILL_AT"
before_kill="$(wc -l <"$ACKED")"

PM="$(head -n 1 "$N1/postmaster.pid")"
CHILDREN="$(ps -o pid= --ppid "$PM" | tr '\n' ' ')"
kill_at="$(now)"
# shellcheck disable=SC2086
kill -9 "$PM" $CHILDREN
say "node1 killed (SIGKILL to postmaster $PM and its backends) after $before_kill acknowledged writes"

# the monitor: three missed probes, then promotion
missed=0
while [[ $missed -lt 3 ]]; do
    if [[ "$(bash "$ROOT/scripts/ops/pgnode.sh" role "127.0.0.1:$P1")" == down ]]; then
        missed=$((missed + 1))
    else
        missed=0
    fi
    sleep 0.2
done
detected_s="$(elapsed "$kill_at")"
"$ROOT/scripts/ops/pgnode.sh" promote "$N2"
promoted_s="$(elapsed "$kill_at")"
say "failure detected after ${detected_s}s; node2 promoted ${promoted_s}s after the kill"

wait "$WRITER" || die "the writer failed: $(tail -n 5 "$BASE/load.err")"
wait "$SAMPLER" || true
PIDS=()
"$BIANJIE" ops missing --dsn "$(dsn_at "$P2")" --acked-file "$ACKED" >"$BASE/missing.json" || true
"$BIANJIE" ops check --dsn "$(dsn_at "$P2")" >"$BASE/check.json" || true

# -- fencing -----------------------------------------------------------------------------------------
set +e
"$ROOT/scripts/ops/pgnode.sh" start "$N1" --peers "127.0.0.1:$P2" 2>"$BASE/fence.err"
fence_rc=$?
set -e
fenced=false
[[ $fence_rc -eq 3 ]] && grep -q FENCED "$BASE/fence.err" && fenced=true
[[ "$(bash "$ROOT/scripts/ops/pgnode.sh" role "127.0.0.1:$P1")" == down ]] || die "node1 started as a primary"
say "old primary started while node2 is primary: refused=$fenced"
"$ROOT/scripts/ops/pgnode.sh" rejoin "$N1" --primary "127.0.0.1:$P2" --name node1
old_role="$(bash "$ROOT/scripts/ops/pgnode.sh" role "127.0.0.1:$P1")"
set +e
psql_at "$P1" -d bianjie -c "CREATE TABLE fencing_probe (x int)" 2>"$BASE/readonly.err"
write_rc=$?
set -e
old_read_only=false
[[ $write_rc -ne 0 ]] && grep -q "read-only" "$BASE/readonly.err" && old_read_only=true
say "node1 rejoined as $old_role; a write there refused: $old_read_only"

"$PY" - "$BASE" "$kill_at" "$detected_s" "$promoted_s" "$fenced" "$old_role" "$old_read_only" \
    "$bench_local" "$bench_sync" "$bench_lag" "$before_kill" <<'PYEOF'
import json, sys
from pathlib import Path
base = Path(sys.argv[1])
kill_at = float(sys.argv[2])
last = lambda p: json.loads((base / p).read_text().strip().splitlines()[-1])  # noqa: E731
load, missing, check, lag = last("load.json"), last("missing.json"), last("check.json"), last("lag-load.json")
cost_local, cost_sync = last("cost-local.json"), last("cost-sync.json")
bench_local, bench_sync, bench_lag = (json.loads(a) for a in sys.argv[8:11])
acks = [float(line.split("\t")[1]) for line in (base / "acked.txt").read_text().splitlines() if line.strip()]
acks.sort()
# Commits that node1 made just before the kill may be noted a moment after it. The switch is the longest
# pause in acknowledgements from the kill on; RTO runs from the kill to the first write after that pause
# (acknowledged by the new primary).
around = [t for t in acks if t >= kill_at - 0.5]
gaps = [(b - a, b) for a, b in zip(around, around[1:])]
resumed = max(gaps)[1] if gaps else None
rto = round(resumed - kill_at, 2) if resumed else None
after = [t for t in acks if resumed and t >= resumed]
before = [t for t in acks if not resumed or t < resumed]
rows = [
    ("one write, local: p50 / p99", f"{cost_local['write_p50_ms']} / {cost_local['write_p99_ms']} ms"),
    ("one write, synchronous (standby flushed): p50 / p99", f"{cost_sync['write_p50_ms']} / {cost_sync['write_p99_ms']} ms"),
    ("replay lag under writes, p50 / p99 / max", f"{lag['lag_ms_p50']} / {lag['lag_ms_p99']} / {lag['lag_ms_max']} ms ({lag['samples']} samples)"),
    ("acknowledged writes (by node1 / after the switch)", f"{len(before)} / {len(after)}"),
    ("acknowledged writes lost (RPO)", missing["missing"]),
    ("failure detected / standby promoted after", f"{sys.argv[3]} s / {sys.argv[4]} s"),
    ("first acknowledged write after the kill (RTO)", f"{rto} s"),
    ("failed writes (not acknowledged)", f"{load['errors']} {load['error_kinds']}"),
    ("audit chains on the new primary", f"{check['chains']} ok={check['chains_ok']}"),
    ("old primary restarted as primary: refused", sys.argv[5]),
    ("old primary rejoined as / write refused there", f"{sys.argv[6]} / {sys.argv[7]}"),
]
figures = {
    "lag_ms_p99": lag["lag_ms_p99"],
    "lag_ms_max": lag["lag_ms_max"],
    "lag_samples": lag["samples"],
    "rpo_writes_lost": missing["missing"],
    "rto_s": rto,
    "detected_s": float(sys.argv[3]),
    "promoted_s": float(sys.argv[4]),
    "acknowledged": load["acknowledged"],
    "acknowledged_before_kill": len(before),
    "write_errors": load["errors"],
    "write_p99_ms": load["write_p99_ms"],
    "write_local_p50_ms": cost_local["write_p50_ms"],
    "write_sync_p50_ms": cost_sync["write_p50_ms"],
    "write_local_p99_ms": cost_local["write_p99_ms"],
    "write_sync_p99_ms": cost_sync["write_p99_ms"],
    "chains_ok": check["chains_ok"],
    "fenced": sys.argv[5] == "true",
    "old_primary_role": sys.argv[6],
    "old_primary_read_only": sys.argv[7] == "true",
}
if bench_local and bench_sync:
    rows.append(("pay benchmark avg / p99, writes local", f"{bench_local['avg_ms']} / {bench_local['p99_ms']} ms"))
    rows.append(("pay benchmark avg / p99, writes synchronous", f"{bench_sync['avg_ms']} / {bench_sync['p99_ms']} ms"))
    for mode in ("local", "sync"):
        lagged = bench_lag[mode]
        rows.append((f"replay lag under the pay benchmark ({mode}), p99 / max", f"{lagged['lag_ms_p99']} / {lagged['lag_ms_max']} ms"))
    figures["bench"] = {
        "local": {k: bench_local.get(k) for k in ("avg_ms", "p50_ms", "p99_ms", "max_ms", "charges", "errors", "lost")},
        "sync": {k: bench_sync.get(k) for k in ("avg_ms", "p50_ms", "p99_ms", "max_ms", "charges", "errors", "lost")},
        "lag_ms_p99": {mode: bench_lag[mode]["lag_ms_p99"] for mode in ("local", "sync")},
        "lag_ms_max": {mode: bench_lag[mode]["lag_ms_max"] for mode in ("local", "sync")},
    }
for name, value in rows:
    print(f"{name:<55} {value}")
print(json.dumps(figures))
PYEOF
