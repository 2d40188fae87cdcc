#!/usr/bin/env bash
# Rehearsal of the daily full backup and the one-step point-in-time restore (issue 20, 每日全备), end to
# end on this machine: docs/operations/backup-restore.md.
#
#   scripts/ops/backup_restore.sh [--short]
#
# 1. a primary cluster of its own (.local/ops/backup/primary, a free port), WAL archived by pgBackRest
#    (Debian's package, installed if missing) into a repository under .local/ops/backup/repo, retention
#    of 7 full backups (one a day: a week); the tables from `bianjie db migrate`;
# 2. writes A (documents, each with its audit record), then a full backup, verified (pgbackrest verify,
#    and `pgbackrest check` that WAL reaches the archive);
# 3. writes B, the restore point T taken, writes C, the WAL switched so everything is archived;
# 4. `bianjie ops restore --to T` into a fresh directory (refused first without --force once that
#    directory is non-empty), which restores, replays to T, promotes, and checks: row counts of every
#    table, every audit chain verified; the rows must be A + B and none of C;
# 5. object storage: buckets on the S3 API (moto's server here; Ceph RGW in a hospital) copied by
#    `bianjie ops backup-objects` into a dated folder, the copy checked against its manifest.
# Last line: one JSON object with backup_s, restore_s, rows_checked, chains_ok (and the rest).
# --short: fewer writes (the integration test). Leaves nothing running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COUNT=400
[[ "${1:-}" == --short ]] && COUNT=40
BASE="$OPS_DIR/backup"
STANZA=bianjie
CONF="$BASE/pgbackrest.conf"
PRIMARY="$BASE/primary/data"
RESTORED="$BASE/restored/data"
MOTO_PID=""

cleanup() {
    pg_stop "$PRIMARY" immediate
    pg_stop "$RESTORED" immediate
    [[ -z "$MOTO_PID" ]] || kill "$MOTO_PID" 2>/dev/null || true
}
trap cleanup EXIT

pg_stop "$PRIMARY" immediate 2>/dev/null || true
pg_stop "$RESTORED" immediate 2>/dev/null || true
rm -rf "$BASE"
own_dir "$BASE"
PORT="$(free_port)"
RPORT="$(free_port)"
init_node "$PRIMARY" "$PORT"
own_dir "$BASE/repo"
own_dir "$BASE/log"
own_dir "$BASE/restored"

cat >"$CONF" <<CONF
[global]
repo1-path=$BASE/repo
repo1-retention-full=7
repo1-retention-full-type=count
log-path=$BASE/log
lock-path=$BASE/log
log-level-console=warn
log-level-file=info
start-fast=y
compress-type=zst
process-max=1

[$STANZA]
pg1-path=$PRIMARY
pg1-port=$PORT
pg1-socket-path=$BASE/primary/sock
pg1-user=postgres
CONF
chmod 600 "$CONF"
[[ ${#RUN[@]} -eq 0 ]] || chown "$OS_USER" "$CONF"
BR=(pgbackrest --config="$CONF" --stanza="$STANZA")

cat >>"$PRIMARY/postgresql.conf" <<CONF
archive_mode = on
archive_command = 'pgbackrest --config=$CONF --stanza=$STANZA archive-push %p'
archive_timeout = 60
CONF
pg_start "$PRIMARY"
psql_at "$PORT" -d postgres -c "CREATE DATABASE bianjie"
DSN="$(dsn_at "$PORT")"
"$BIANJIE" db migrate --dsn "$DSN" >"$BASE/migrate.log"
say "primary on 127.0.0.1:$PORT, $(wc -l <"$BASE/migrate.log") tables migrated"

as_owner "${BR[@]}" stanza-create
as_owner "${BR[@]}" check

"$BIANJIE" ops write --dsn "$DSN" --label A --count "$COUNT" >/dev/null
say "writes A: $COUNT documents with their audit records"

t0="$(now)"
as_owner "${BR[@]}" --type=full backup
as_owner "${BR[@]}" verify
backup_s="$(elapsed "$t0")"
BACKUP_JSON="$(as_owner "${BR[@]}" --output=json info)"
say "full backup taken and verified in ${backup_s}s"

"$BIANJIE" ops write --dsn "$DSN" --label B --count "$COUNT" >/dev/null
sleep 1.1  # the restore point sits strictly between B's last commit and C's first
TO="$(date -u +%Y-%m-%dT%H:%M:%S.%6N+00:00)"
sleep 1.1
"$BIANJIE" ops write --dsn "$DSN" --label C --count "$COUNT" >/dev/null
psql_at "$PORT" -d bianjie -tAc "SELECT pg_switch_wal()" >/dev/null
as_owner "${BR[@]}" check  # waits until the switched segment is in the archive
say "writes B, restore point $TO, writes C; WAL archived"

# a non-empty target is refused without --force
echo "not a database" >"$RESTORED.keep"
own_dir "$RESTORED"
cp "$RESTORED.keep" "$RESTORED/something"
set +e
"$BIANJIE" ops restore --to "$TO" --target "$RESTORED" --port "$RPORT" --config "$CONF" --stanza "$STANZA" \
    >"$BASE/refused.out" 2>"$BASE/refused.err"
refused_rc=$?
set -e
refused=false
if [[ $refused_rc -eq 2 ]] && grep -q TARGET_NOT_EMPTY "$BASE/refused.err"; then refused=true; fi
[[ -f "$RESTORED/something" ]] || die "the refused restore touched the target"
say "restore into a non-empty target without --force: refused=$refused (exit $refused_rc)"

t0="$(now)"
"$BIANJIE" ops restore --to "$TO" --target "$RESTORED" --port "$RPORT" --config "$CONF" --stanza "$STANZA" \
    --force --stop >"$BASE/restore.json"
restore_s="$(elapsed "$t0")"
say "restored and checked in ${restore_s}s"

# Objects: the S3 API of moto's server (the emulator) on a free port, two buckets, the daily copy.
MPORT="$(free_port)"
"$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$MPORT" >"$BASE/moto.log" 2>&1 &
MOTO_PID=$!
export AWS_ACCESS_KEY_ID=rehearsal AWS_SECRET_ACCESS_KEY=rehearsal AWS_REGION=cn-north-1
"$PY" - "$MPORT" <<'PYEOF'
import sys, time, boto3
url = f"http://127.0.0.1:{sys.argv[1]}"
s3 = boto3.client("s3", endpoint_url=url, region_name="cn-north-1")
for _ in range(100):
    try:
        s3.list_buckets(); break
    except Exception:
        time.sleep(0.1)
for bucket in ("bianjie-film-studies", "bianjie-rx-documents"):
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "cn-north-1"})
    for n in range(20):
        s3.put_object(Bucket=bucket, Key=f"2026/12/{n:03d}/object.bin", Body=bytes([n]) * (1000 + n))
PYEOF
"$BIANJIE" ops backup-objects --aws-endpoint "http://127.0.0.1:$MPORT" --dest "$BASE/objects" >"$BASE/objects.json"
objects_ok="$("$PY" -c "
import json, sys
from pathlib import Path
from bianjie_dev.ops.objects import verify_copy
report = json.loads(Path('$BASE/objects.json').read_text().splitlines()[-1])
print('true' if verify_copy(Path(report['folder'])) and report['objects'] == 40 else 'false')")"
kill "$MOTO_PID"
MOTO_PID=""

"$PY" - "$BASE/restore.json" "$BASE/objects.json" "$COUNT" "$backup_s" "$restore_s" "$refused" "$objects_ok" \
    "$BACKUP_JSON" <<'PYEOF'
import json, sys
restore = json.loads(open(sys.argv[1]).read().splitlines()[-1])
objects = json.loads(open(sys.argv[2]).read().splitlines()[-1])
count = int(sys.argv[3])
tables = restore["tables"]
pay = tables.get("bianjie-PayTable", 0)
rx = tables.get("bianjie-RxTable", 0)
# A and B are in the restored database, C is not: 2 * count documents, half pay, half rx
expected = 2 * count
point_in_time_ok = pay + rx == expected
info = json.loads(sys.argv[8])[0]
rows = [
    ("backup (full + verify)", f"{float(sys.argv[4]):.2f} s"),
    ("restore (one command: restore, replay, promote, check)", f"{float(sys.argv[5]):.2f} s"),
    ("rows checked", restore["rows_checked"]),
    ("audit chains verified", f"{restore['chains']} ({restore['audit_records']} records)"),
    ("documents at T (expected A+B)", f"{pay + rx} ({expected})"),
    ("non-empty target refused", sys.argv[6]),
    ("objects copied", f"{objects['objects']} in {objects['objects_s']} s"),
]
for name, value in rows:
    print(f"{name:<58} {value}")
print(json.dumps({
    "backup_s": float(sys.argv[4]),
    "restore_s": float(sys.argv[5]),
    "rows_checked": restore["rows_checked"],
    "chains": restore["chains"],
    "chains_ok": restore["chains_ok"],
    "point_in_time_ok": point_in_time_ok,
    "refused_without_force": sys.argv[6] == "true",
    "objects": objects["objects"],
    "objects_ok": sys.argv[7] == "true",
    "backup_bytes": info["backup"][-1]["info"]["repository"]["size"],
    "writes_per_batch": count,
}))
PYEOF
