#!/usr/bin/env bash
# PostgreSQL archive_command: copy one finished WAL segment into the backup area, durably.
#
#   archive_command = '/opt/cleangate/deploy/backup/archive-wal.sh %p %f'
#
# Exit 0 only once the segment is safely on disk (PostgreSQL keeps it and retries until then; it never
# deletes a segment whose archiving failed). Idempotent: a segment already archived with identical content is
# success; a *different* file under the same name is refused (two clusters writing into one archive).
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$(readlink -f "$0")")/common.sh"

src="${1:?usage: archive-wal.sh %p %f}"
name="${2:?usage: archive-wal.sh %p %f}"
dest="$WAL_DIR/$name"

mkdir -p "$WAL_DIR"
if [ -e "$dest" ]; then
    if cmp -s "$src" "$dest"; then
        exit 0
    fi
    die "archive-wal: $dest exists with different content; refusing to overwrite"
fi

tmp="$WAL_DIR/.$name.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cp "$src" "$tmp"
sync "$tmp"                 # the data, before the name appears
mv "$tmp" "$dest"
sync "$WAL_DIR"             # the directory entry
trap - EXIT
