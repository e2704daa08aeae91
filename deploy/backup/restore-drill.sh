#!/usr/bin/env bash
# Restore drill: prove the backups restore. Takes the newest base backup plus every archived WAL segment,
# recovers them into a scratch data directory, starts that copy on another port (Unix socket only, never
# on the network, never archiving), runs `gate-service ledger verify` against it, prints row counts, and
# removes the copy again. Touches nothing of the live cluster.
#
#   sudo -u postgres /opt/cleangate/deploy/backup/restore-drill.sh [--keep] [--port 5499] [--scratch DIR]
#
# Exit status 0: restored, started, ledger chains intact. Anything else: the drill failed - treat it as an
# incident (the backups are not what you think they are).
#
# Settings (environment or /etc/cleangate/backup.env): CLEANGATE_BACKUP_DIR, PG_BIN, CLEANGATE_DB,
# CLEANGATE_GATE_SERVICE (path of gate-service; default: /opt/cleangate/venv/bin/gate-service or PATH),
# CLEANGATE_PG_OS_USER (run as root, the scratch server still runs as this user, e.g. postgres).
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$(readlink -f "$0")")/common.sh"

port=5499
keep=0
scratch=""
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        --scratch) scratch="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done

gate_service="${CLEANGATE_GATE_SERVICE:-}"
if [ -z "$gate_service" ]; then
    if [ -x /opt/cleangate/venv/bin/gate-service ]; then gate_service=/opt/cleangate/venv/bin/gate-service
    else gate_service="$(command -v gate-service || true)"; fi
fi
[ -n "$gate_service" ] || die "gate-service not found; set CLEANGATE_GATE_SERVICE"

pg_user="${CLEANGATE_PG_OS_USER:-$(id -un)}"
pgrun() {
    if [ "$(id -un)" != "$pg_user" ]; then runuser -u "$pg_user" -- "$@"; else "$@"; fi
}
[ "$(id -u "$pg_user")" != 0 ] || die "PostgreSQL does not run as root: set CLEANGATE_PG_OS_USER=postgres"

latest="$(find "$BASE_DIR" -mindepth 1 -maxdepth 1 -type d -name '2*' -printf '%f\n' 2>/dev/null | sort | tail -n1)"
[ -n "$latest" ] || die "no base backup in $BASE_DIR (run base-backup.sh first)"
started=$(date +%s)

if [ -z "$scratch" ]; then scratch="$(mktemp -d "${TMPDIR:-/tmp}/cleangate-drill.XXXXXX")"; fi
data="$scratch/data"
sock="$scratch"
cleanup() {
    if [ -f "$data/postmaster.pid" ]; then pgrun "$PG_BIN/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true; fi
    if [ "$keep" = 0 ]; then rm -rf "$scratch"; else log "kept $scratch (port $port)"; fi
}
trap cleanup EXIT

log "restoring base backup $latest + WAL from $WAL_DIR into $data"
mkdir -p "$data"
cp -a "$BASE_DIR/$latest/." "$data/"
chmod 700 "$data"
rm -f "$data/postmaster.pid" "$data/postmaster.opts"
# Debian keeps postgresql.conf and pg_hba.conf in /etc: the copy gets minimal ones of its own.
[ -f "$data/postgresql.conf" ] || : > "$data/postgresql.conf"
cat > "$scratch/pg_hba.conf" <<HBA
local all all trust
HBA
touch "$data/recovery.signal"
chown -R "$pg_user" "$scratch"

# Command-line settings beat postgresql.conf and postgresql.auto.conf: the copy listens on no TCP address,
# archives nothing, and replays the whole archive, then opens for writes (a drill needs `ledger verify`).
opts=(-c "port=$port" -c "listen_addresses=" -c "unix_socket_directories=$sock" -c "hba_file=$scratch/pg_hba.conf"
      -c "archive_mode=off" -c "restore_command=cp $WAL_DIR/%f %p" -c "recovery_target_timeline=latest"
      -c "recovery_target_action=promote" -c "shared_buffers=128MB"
      -c "logging_collector=off" -c "log_destination=stderr" -c "ssl=off")
# Recovery refuses to run with fewer slots than the primary had: take them from the backup's control file.
while IFS=: read -r key value; do
    value="${value// /}"
    case "$key" in
        "max_connections setting") opts+=(-c "max_connections=$value") ;;
        "max_worker_processes setting") opts+=(-c "max_worker_processes=$value") ;;
        "max_wal_senders setting") opts+=(-c "max_wal_senders=$value") ;;
        "max_prepared_xacts setting") opts+=(-c "max_prepared_transactions=$value") ;;
        "max_locks_per_xact setting") opts+=(-c "max_locks_per_transaction=$value") ;;
    esac
done < <(LC_ALL=C "$PG_BIN/pg_controldata" "$data")
pgrun "$PG_BIN/pg_ctl" -D "$data" -l "$scratch/postgres.log" -w -t 600 -o "$(printf "%q " "${opts[@]}")" start \
    >/dev/null || { tail -n 30 "$scratch/postgres.log" >&2; die "restored copy did not start"; }

psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U "$pg_user" -d "$1" -At -c "$2"; }
for _ in $(seq 1 600); do
    [ "$(psql_ postgres 'SELECT pg_is_in_recovery()' 2>/dev/null || echo t)" = f ] && break
    sleep 1
done
[ "$(psql_ postgres 'SELECT pg_is_in_recovery()')" = f ] || die "recovery did not finish"
psql_ postgres "SELECT 1 FROM pg_database WHERE datname = '$CLEANGATE_DB'" | grep -q 1 \
    || die "database $CLEANGATE_DB is not in the backup"
log "recovered in $(( $(date +%s) - started )) s; replayed up to $(grep -o 'redo done at [^ ]*' "$scratch/postgres.log" | tail -n1 || true)"

dsn="postgresql:///$CLEANGATE_DB?host=$sock&port=$port&user=$pg_user"
echo "== ledger verify =="
set +e
DATABASE_URL="$dsn" CLEANGATE_DATA_DIR="$scratch/service" "$gate_service" ledger verify
verify=$?
set -e

echo "== row counts ($CLEANGATE_DB, restored from $latest) =="
psql_ "$CLEANGATE_DB" "
SELECT format('%-22s %s', t, (xpath('/row/n/text()',
       query_to_xml(format('SELECT count(*) AS n FROM %I', t), false, true, '')))[1]::text)
FROM unnest(ARRAY['enterprises','gates','vehicles','api_tokens','passages','audit_log','alerts',
                  'blacklist_entries','blacklist_events','video_segments','transport_volumes']) AS t
WHERE to_regclass(t) IS NOT NULL"
psql_ "$CLEANGATE_DB" "SELECT format('%-22s %s', 'latest passage', coalesce(max(at)::text, '-')) FROM passages"

if [ "$verify" -ne 0 ]; then die "ledger verify FAILED on the restored copy"; fi
log "restore drill OK in $(( $(date +%s) - started )) s"
