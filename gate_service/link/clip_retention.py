"""The platform's retention of what sites uploaded (part of the nightly retention job).

Uploaded clips follow the platform's video retention (三(一)3: at least 6 months, HJ 1321 settings raise it),
measured from the segment's end like the platform's own video, so a copy never outlives nor undercuts the rule
the site itself keeps. A clip under a hold is kept: the site's (mirrored, released when the site releases it)
or the platform's own. The index row stays, with deleted_at, so a requester learns the copy went by retention.

Staging files of uploads that stopped are removed once no chunk arrived for ``link_staging_max_age_h`` hours
and the upload cannot resume: its requests are finished, or the site itself has not been heard from for as
long (then the open requests covering it fail with a reason the requester sees). A site that is online with
a request still open may resume: its partial upload is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg

from gate_service.video.storage import BadKey, check_key

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class ClipRetention:
    clips_deleted: int = 0
    clip_bytes_freed: int = 0
    clip_files_missing: int = 0
    clips_held_kept: int = 0
    staging_removed: int = 0
    staging_bytes_freed: int = 0
    staging_kept_resumable: int = 0
    requests_failed: int = 0


async def planned_clips(pool: asyncpg.Pool, video_cutoff: datetime) -> dict[str, int]:
    """What expire_clips would delete now (for `gate-service retention plan`), deleting nothing."""
    row = await pool.fetchrow(
        """SELECT count(*) FILTER (WHERE NOT held AND NOT platform_hold) AS clips,
                  coalesce(sum(bytes) FILTER (WHERE NOT held AND NOT platform_hold), 0) AS bytes,
                  count(*) FILTER (WHERE held OR platform_hold) AS held
           FROM link_video_index WHERE storage_key IS NOT NULL AND coalesce(ended_at, started_at) <= $1""",
        video_cutoff)
    return {"clips_to_delete": row["clips"], "clip_bytes": int(row["bytes"]), "clips_held_kept": row["held"]}


async def expire_clips(pool: asyncpg.Pool, store: Any, video_cutoff: datetime, report: ClipRetention) -> None:
    """Delete the platform's copies of uploaded segments that ended by ``video_cutoff`` and are not held."""
    report.clips_held_kept = await pool.fetchval(
        """SELECT count(*) FROM link_video_index WHERE storage_key IS NOT NULL
           AND coalesce(ended_at, started_at) <= $1 AND (held OR platform_hold)""", video_cutoff)
    while True:
        # Marked first, the file removed after: a crash between leaves a file no row points at, never a row
        # pointing at a file that is gone. The hold is checked again in the statement (and by the trigger).
        rows = await pool.fetch(
            f"""WITH old AS (
                    SELECT site_id, segment_id, storage_key, bytes FROM link_video_index
                    WHERE storage_key IS NOT NULL AND coalesce(ended_at, started_at) <= $1
                      AND NOT held AND NOT platform_hold
                    ORDER BY ended_at LIMIT {BATCH} FOR UPDATE SKIP LOCKED)
                UPDATE link_video_index i SET storage_key = NULL, deleted_at = now()
                FROM old WHERE i.site_id = old.site_id AND i.segment_id = old.segment_id
                RETURNING i.site_id, i.segment_id, old.storage_key, old.bytes""", video_cutoff)
        for row in rows:
            report.clips_deleted += 1
            report.clip_bytes_freed += row["bytes"] or 0
            try:
                found = await store.delete(check_key(row["storage_key"]))
            except BadKey:
                found = False
            if not found:
                report.clip_files_missing += 1
        if len(rows) < BATCH:
            break
    if report.clips_deleted or report.clips_held_kept:
        log.info("retention: deleted %d uploaded clip(s) of sites, %d bytes (ended by %s); %d kept under a hold",
                 report.clips_deleted, report.clip_bytes_freed, video_cutoff.isoformat(), report.clips_held_kept)


def _staged(root: Path) -> list[tuple[int, int, Path, float, int]]:
    """(site, segment, path, mtime, size) of every staging file, read in a thread (a directory walk)."""
    out = []
    if not root.is_dir():
        return out
    for site_dir in root.iterdir():
        if not site_dir.is_dir() or not site_dir.name.isdigit():
            continue
        for part in site_dir.glob("*.part"):
            stem = part.name[:-len(".part")]
            if not stem.isdigit():
                continue
            with contextlib.suppress(FileNotFoundError):
                st = part.stat()
                out.append((int(site_dir.name), int(stem), part, st.st_mtime, st.st_size))
    return out


def _remove_unlocked(part: Path) -> bool:
    """Remove a staging file unless an upload holds its lock right now (clip_upload flocks it per chunk)."""
    try:
        fh = open(part, "ab")  # noqa: SIM115 - closed below, after the unlink, so the lock covers it
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return False
    try:
        part.unlink(missing_ok=True)
        return True
    finally:
        fh.close()


async def sweep_staging(pool: asyncpg.Pool, data_dir: Path, max_age: timedelta, report: ClipRetention,
                        now: datetime | None = None) -> None:
    now = now or datetime.now(timezone.utc)
    stale_before = now - max_age
    for site_id, segment_id, part, mtime, size in await asyncio.to_thread(_staged, Path(data_dir) / "link" / "incoming"):
        touched = datetime.fromtimestamp(mtime, timezone.utc)
        if touched > stale_before:
            continue
        async with pool.acquire() as conn, conn.transaction():
            seg = await conn.fetchrow(
                """SELECT i.gate_id, i.started_at, i.ended_at, i.storage_key, s.last_seen
                   FROM link_video_index i LEFT JOIN link_sites s ON s.site_id = i.site_id
                   WHERE i.site_id = $1 AND i.segment_id = $2""", site_id, segment_id)
            open_ids: list[int] = []
            if seg is not None and seg["storage_key"] is None:
                open_ids = [r["id"] for r in await conn.fetch(
                    """SELECT id FROM link_video_requests WHERE site_id = $1 AND gate_id = $2
                       AND state IN ('pending', 'uploading') AND to_at > $3
                       AND from_at < coalesce($4::timestamptz, 'infinity'::timestamptz) FOR UPDATE""",
                    site_id, seg["gate_id"], seg["started_at"], seg["ended_at"])]
            site_around = seg is not None and seg["last_seen"] is not None and seg["last_seen"] > stale_before
            if open_ids and site_around:
                report.staging_kept_resumable += 1  # the site is online and still asked: it may resume
                continue
            if not await asyncio.to_thread(_remove_unlocked, part):
                continue
            report.staging_removed += 1
            report.staging_bytes_freed += size
            if open_ids:
                seen = f"{seg['last_seen']:%Y-%m-%d %H:%M} UTC" if seg["last_seen"] else "从未 / never"
                hours = int(max_age / timedelta(hours=1))
                reason = (f"上传中断:片段 {segment_id} 已 {hours} 小时未收到数据,站点最后联系于 {seen};平台已删除未完成的 "
                          f"{size} 字节,可重新发起调取 / the upload of segment {segment_id} stopped (nothing for "
                          f"{hours} h, site last seen {seen}); the partial upload was removed — ask again")
                status = await conn.execute(
                    """UPDATE link_video_requests SET state = 'failed', state_reason = $2, updated_at = now(),
                              finished_at = now() WHERE id = ANY($1::bigint[])""", open_ids, reason)
                report.requests_failed += int(status.split()[-1])
    if report.staging_removed or report.staging_kept_resumable:
        log.info("retention: removed %d abandoned partial upload(s) (%d bytes), failed %d request(s); %d kept "
                 "(the site may resume)", report.staging_removed, report.staging_bytes_freed, report.requests_failed,
                 report.staging_kept_resumable)
