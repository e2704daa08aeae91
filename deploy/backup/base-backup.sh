#!/usr/bin/env bash
# Take a base backup (pg_basebackup, plain format, with the WAL needed to make it consistent), check it
# against its manifest, keep the newest $CLEANGATE_BACKUP_KEEP and drop archived WAL older than the oldest kept.
#
# Run as the postgres OS user (the systemd timer cleangate-backup.timer does, nightly). Connection: libpq
# environment (PGHOST, PGPORT, PGUSER; default: local socket as postgres) or CLEANGATE_BACKUP_DSN.
# Prints the backup's directory on success.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$(readlink -f "$0")")/common.sh"

mkdir -p "$BASE_DIR" "$WAL_DIR"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
target="$BASE_DIR/$stamp"
partial="$BASE_DIR/.partial-$stamp"
trap 'rm -rf "$partial"' EXIT

log "base backup → $target"
conn=()
if [ -n "${CLEANGATE_BACKUP_DSN:-}" ]; then conn=(-d "$CLEANGATE_BACKUP_DSN"); fi
"$PG_BIN/pg_basebackup" "${conn[@]}" -D "$partial" -Fp -X stream --checkpoint=fast \
    --manifest-checksums=SHA256 --label="cleangate $stamp" --no-password
"$PG_BIN/pg_verifybackup" --quiet "$partial" || die "pg_verifybackup failed for $partial"
sync -f "$partial" 2>/dev/null || sync
mv "$partial" "$target"
trap - EXIT

# Retention: newest N base backups; WAL before the oldest kept one's start is no longer needed.
mapfile -t backups < <(find "$BASE_DIR" -mindepth 1 -maxdepth 1 -type d -name '2*' -printf '%f\n' | sort)
excess=$(( ${#backups[@]} - CLEANGATE_BACKUP_KEEP ))
for (( i = 0; i < excess; i++ )); do
    log "removing old base backup ${backups[$i]}"
    rm -rf "${BASE_DIR:?}/${backups[$i]}"
done
oldest="$(find "$BASE_DIR" -mindepth 1 -maxdepth 1 -type d -name '2*' -printf '%f\n' | sort | head -n1)"
if [ -n "$oldest" ]; then
    first_wal="$(sed -n 's/^START WAL LOCATION: .* (file \([0-9A-F]\{24\}\))$/\1/p' "$BASE_DIR/$oldest/backup_label")"
    if [ -n "$first_wal" ]; then
        "$PG_BIN/pg_archivecleanup" "$WAL_DIR" "$first_wal"
    fi
fi
log "base backup done: $target ($(du -sh "$target" | cut -f1))"
echo "$target"
