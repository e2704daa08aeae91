# Shared by the backup scripts: settings from /etc/cleangate/backup.env (or $CLEANGATE_BACKUP_ENV), then
# defaults. Values already in the environment win over the file, so a test or a one-off run can override them.
# shellcheck shell=bash

_cg_env_file="${CLEANGATE_BACKUP_ENV:-/etc/cleangate/backup.env}"
if [ -r "$_cg_env_file" ]; then
    while IFS='=' read -r _k _v; do
        case "$_k" in ''|\#*) continue ;; esac
        _v="${_v%\"}"; _v="${_v#\"}"
        if [ -z "${!_k+set}" ]; then export "$_k=$_v"; fi
    done < "$_cg_env_file"
fi

: "${CLEANGATE_BACKUP_DIR:=/var/backups/cleangate}"   # base/ and wal/ live here (ideally another disk or host mount)
: "${CLEANGATE_BACKUP_KEEP:=7}"                       # base backups kept; WAL older than the oldest is removed
: "${CLEANGATE_DB:=cleangate}"

if [ -z "${PG_BIN:-}" ]; then
    for _d in /usr/lib/postgresql/17/bin /usr/lib/postgresql/16/bin /usr/lib/postgresql/15/bin; do
        if [ -x "$_d/pg_ctl" ]; then PG_BIN="$_d"; break; fi
    done
fi
: "${PG_BIN:?set PG_BIN to the PostgreSQL binaries, e.g. /usr/lib/postgresql/15/bin}"
export PG_BIN CLEANGATE_BACKUP_DIR CLEANGATE_BACKUP_KEEP CLEANGATE_DB

BASE_DIR="$CLEANGATE_BACKUP_DIR/base"
WAL_DIR="$CLEANGATE_BACKUP_DIR/wal"

log() { printf '%s %s\n' "$(date '+%Y-%m-%dT%H:%M:%S%z')" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
