"""Reading the plan's inputs from the database, and applying it (the daily retention job)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import asyncpg

from gate_service.config import Settings
from gate_service.retention.plan import Partition, RetentionPlan, Segment, cutoffs, describe, plan
from gate_service.video.storage import BadKey, BlobStore, check_key

log = logging.getLogger(__name__)

_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")
_NAME = re.compile(r"^passages_\d{6}$")
# A segment still 'recording' a day after it started was abandoned by a recorder that stopped (segments last
# minutes); its row is ended so that it, too, expires one day.
ABANDONED_AFTER = timedelta(days=1)


async def load_partitions(conn: asyncpg.Connection) -> list[Partition]:
    """The ledger's partitions with the bounds the database has for them (not what their names suggest)."""
    async with conn.transaction(readonly=True):
        # Bounds are printed in the session time zone; UTC makes them parse the same everywhere.
        await conn.execute("SET LOCAL TimeZone = 'UTC'")
        rows = await conn.fetch(
            """SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'passages'::regclass ORDER BY 1""")
    found = []
    for row in rows:
        match = _BOUND.search(row["bound"] or "")
        if match is None:  # DEFAULT or MINVALUE/MAXVALUE bounds: not a month, never dropped
            continue
        try:
            start, end = (datetime.fromisoformat(v) for v in match.groups())
        except ValueError:
            continue
        found.append(Partition(row["name"], start, end))
    return found


async def load_segments(conn: asyncpg.Connection | asyncpg.Pool, ended_by: datetime,
                        now: datetime | None = None) -> list[Segment]:
    """Segments that ended by ``ended_by``; an abandoned one (see ABANDONED_AFTER) counts as ended when it
    started, as the job's sweep will record, so that the printed plan is what the job does."""
    abandoned = (now or datetime.now(timezone.utc)) - ABANDONED_AFTER
    rows = await conn.fetch(
        """SELECT * FROM (
               SELECT id, gate_id, started_at, storage_key, bytes, legal_hold, hold_case_ref,
                      coalesce(ended_at, CASE WHEN started_at < $2 THEN started_at END) AS ended_at,
                      deleted_at IS NOT NULL AS deleted
               FROM video_segments WHERE deleted_at IS NULL) s
           WHERE ended_at IS NOT NULL AND ended_at <= $1
           ORDER BY ended_at, id""",
        ended_by, abandoned,
    )
    return [Segment.from_row(dict(r)) for r in rows]


async def make_plan(pool: asyncpg.Pool, as_of: date, settings: Settings, *, count_rows: bool = True
                    ) -> RetentionPlan:
    _, video_cutoff, _ = cutoffs(as_of, settings)
    async with pool.acquire() as conn:
        partitions = await load_partitions(conn)
        segments = await load_segments(conn, video_cutoff)
        result = plan(as_of, partitions, segments, settings)
        if count_rows and result.partitions:
            counted = []
            for part in result.partitions:
                rows = await conn.fetchval(f'SELECT count(*) FROM "{_checked(part.name)}"')
                counted.append(Partition(part.name, part.start, part.end, rows))
            result = RetentionPlan(result.as_of, result.limits, result.ledger_cutoff, result.video_cutoff,
                                   tuple(counted), result.segments, result.held, result.notes)
    return result


def _checked(name: str) -> str:
    # Partition names go into DDL; only the ones ensure_passage_partition() makes are accepted.
    if not _NAME.match(name):
        raise ValueError(f"unexpected partition name {name!r}")
    return name


@dataclass
class RetentionReport:
    as_of: date
    partitions_dropped: list[dict[str, Any]] = field(default_factory=list)
    segments_deleted: int = 0
    video_bytes_freed: int = 0
    media_deleted: int = 0
    files_missing: int = 0
    held_kept: int = 0
    abandoned_ended: int = 0
    # 联网: the platform's copies of clips sites uploaded, and abandoned partial uploads (link/clip_retention).
    uploaded_clips: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def end_abandoned_segments(pool: asyncpg.Pool, now: datetime | None = None) -> int:
    now = now or datetime.now(timezone.utc)
    status = await pool.execute(
        """UPDATE video_segments SET ended_at = started_at, status = 'incomplete',
                  note = 'recorder stopped while recording; nothing was saved'
           WHERE status = 'recording' AND started_at < $1""",
        now - ABANDONED_AFTER,
    )
    return int(status.split()[-1])


async def drop_partition(pool: asyncpg.Pool, part: Partition, as_of: date) -> tuple[int, list[str]] | None:
    """Drop one ledger partition, recording it and its chain runs first; return (rows, media keys it referenced).

    One transaction: the record of what went and the DROP commit together or not at all. The append-only row
    trigger does not fire on DROP, which is the point of partitioning by month.
    """
    name = _checked(part.name)
    async with pool.acquire() as conn, conn.transaction():
        # The reads below wait for nothing that matters; the DROP's lock is taken NOWAIT just before it.
        await conn.execute("SET LOCAL lock_timeout = '10s'")
        still = await conn.fetchval(
            "SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass($1) AND inhparent = 'passages'::regclass",
            name)
        if not still:
            return None
        rows = await conn.fetchval(f'SELECT count(*) FROM "{name}"')
        refs = await conn.fetch(
            f"""SELECT DISTINCT ref FROM "{name}", unnest(ARRAY[snapshot_ref, crop_ref]) AS ref
                WHERE ref IS NOT NULL""")
        await conn.execute(
            "INSERT INTO ledger_dropped_partitions (name, range_from, range_to, rows, as_of) VALUES ($1,$2,$3,$4,$5)",
            name, part.start, part.end, rows, as_of)
        # Runs of consecutive gate_seq per gate (gaps and islands): what `ledger verify` needs to bridge the hole.
        await conn.execute(
            f"""INSERT INTO ledger_dropped_runs
                    (gate_id, first_seq, last_seq, rows, first_prev_hash, last_hash, partition)
                SELECT gate_id, min(gate_seq), max(gate_seq), count(*),
                       (array_agg(prev_hash ORDER BY gate_seq))[1], (array_agg(hash ORDER BY gate_seq DESC))[1], $1
                FROM (SELECT gate_id, gate_seq, prev_hash, hash,
                             gate_seq - row_number() OVER (PARTITION BY gate_id ORDER BY gate_seq) AS island
                      FROM "{name}") s
                GROUP BY gate_id, island""",
            name)
        # DROP needs ACCESS EXCLUSIVE on the parent. Queued behind a reader (a ledger export's cursor holds
        # ACCESS SHARE for minutes), that request would hold every gate's INSERT behind it: a gate waited 10 s.
        # NOWAIT: if anyone reads the ledger now, skip; tomorrow's run tries again.
        await conn.execute(f'LOCK TABLE passages, "{name}" IN ACCESS EXCLUSIVE MODE NOWAIT')
        # The override index (migration 0008) is derived from these rows: it goes with them.
        await conn.execute("DELETE FROM passage_overrides WHERE override_at >= $1 AND override_at < $2",
                           part.start, part.end)
        await conn.execute(f'DROP TABLE "{name}"')
    return rows, [r["ref"] for r in refs]


async def apply_plan(pool: asyncpg.Pool, store: BlobStore, p: RetentionPlan) -> RetentionReport:
    report = RetentionReport(as_of=p.as_of, held_kept=len(p.held), notes=list(p.notes))
    media: set[str] = set()
    for part in p.partitions:
        try:
            done = await drop_partition(pool, part, p.as_of)
        except (asyncpg.LockNotAvailableError, asyncpg.QueryCanceledError) as exc:
            report.skipped.append(f"{part.name}: {exc}")
            log.warning("retention: %s not dropped this time (%s)", part.name, exc)
            continue
        if done is None:
            continue
        rows, refs = done
        media.update(refs)
        report.partitions_dropped.append({"name": part.name, "from": part.start.isoformat(),
                                          "to": part.end.isoformat(), "rows": rows})
        log.info("retention: dropped ledger partition %s (%s .. %s, %d rows)", part.name, part.start.isoformat(),
                 part.end.isoformat(), rows)
    if media:
        # A snapshot may also be referenced from a row that stays (an override copies it): keep those.
        still = await pool.fetch(
            """SELECT DISTINCT ref FROM passages, unnest(ARRAY[snapshot_ref, crop_ref]) AS ref
               WHERE snapshot_ref = ANY($1::text[]) OR crop_ref = ANY($1::text[])""", sorted(media))
        for key in sorted(media - {r["ref"] for r in still}):
            try:
                report.media_deleted += await store.delete(check_key(key))
            except BadKey:
                continue

    ids = [s.id for s in p.segments]
    for start in range(0, len(ids), 500):
        # The conditions are checked again at the moment of deletion: a hold placed since planning wins.
        rows = await pool.fetch(
            """UPDATE video_segments SET deleted_at = now()
               WHERE id = ANY($1::bigint[]) AND deleted_at IS NULL AND NOT legal_hold AND ended_at <= $2
               RETURNING id, gate_id, storage_key, bytes""",
            ids[start:start + 500], p.video_cutoff)
        for row in rows:
            report.segments_deleted += 1
            report.video_bytes_freed += row["bytes"] or 0
            if not await store.delete(row["storage_key"]):
                report.files_missing += 1
    if p.segments:
        log.info("retention: deleted %d video segment(s), %d bytes (ended by %s); %d kept under legal hold",
                 report.segments_deleted, report.video_bytes_freed, p.video_cutoff.isoformat(), len(p.held))
    if report.files_missing:
        log.warning("retention: %d segment file(s) were already missing from storage", report.files_missing)
    return report


async def uploaded_clip_retention(pool: asyncpg.Pool, store: BlobStore, settings: Settings,
                                  video_cutoff: datetime) -> dict[str, int]:
    from dataclasses import asdict

    from gate_service.link.clip_retention import ClipRetention, expire_clips, sweep_staging

    report = ClipRetention()
    await expire_clips(pool, store, video_cutoff, report)
    await sweep_staging(pool, settings.data_dir, timedelta(hours=settings.link_staging_max_age_h), report)
    return asdict(report)


async def run_retention(pool: asyncpg.Pool, store: BlobStore, settings: Settings, today: date) -> RetentionReport:
    """The retention job: end abandoned segments, plan for today, apply, log what went."""
    abandoned = await end_abandoned_segments(pool)
    p = await make_plan(pool, today, settings, count_rows=False)
    for line in p.notes:
        log.warning("retention: %s", line)
    if not p.empty:
        for line in describe(p):
            log.info("retention: %s", line)
    report = await apply_plan(pool, store, p)
    report.abandoned_ended = abandoned
    report.uploaded_clips = await uploaded_clip_retention(pool, store, settings, p.video_cutoff)
    if p.empty:
        log.info("retention: nothing is old enough to go as of %s", today.isoformat())
    return report
