"""Indexing what waits in the spool: provisional segments recorded while PostgreSQL was down, closing values
that could not be written, and files a stopped run left behind (``recover``).

Indexing is exactly once whatever crashes in between: the segment id and storage key are chosen and written into
the sidecar first, the file is moved into the store, the row is inserted with that id (``ON CONFLICT DO
NOTHING``), and only then is the sidecar removed; every step can be repeated.

``SpoolIndex`` is a part of ``VideoRecorder`` (its base class), kept apart because it is a job of its own: the
recorder writes segments, this turns what was written into ``video_segments`` rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import asyncpg

from gate_service.db.outage import is_db_down
from gate_service.video.recorder_metrics import RecorderMetrics
from gate_service.video.s3store import StoreUnavailable
from gate_service.video.segment import ClosedSegment, Segment
from gate_service.video.spool import (
    LOCK_NAME,
    SpoolLocked,
    adopt,
    fsync_file,
    lock_own,
    read_json,
    unlink_all,
    write_json,
)
from gate_service.video.storage import BlobStore, media_key, sha256_file

log = logging.getLogger("gate_service.video.recorder")

# Indexing what waits in the spool: first retry after this, doubling up to the maximum, while the database is down.
INDEX_RETRY_SECONDS = 1.0
INDEX_RETRY_MAX_SECONDS = 60.0
PROVISIONAL_NOTE = "recorded while the database was unreachable; indexed afterwards"
CHANGED_NOTE = "the file changed after it closed (a power cut before it reached the disk?)"


class SpoolIndex:
    """The indexing half of ``VideoRecorder``; the attributes below are set by its ``__init__``."""

    pool: asyncpg.Pool
    store: BlobStore
    spool_dir: Path
    recorder_id: str
    lock_wait: float
    _lock_fd: int | None
    _gates: dict[str, Any]
    _closed: bool
    _metrics: RecorderMetrics
    _pending: dict[Path, dict[str, Any]]
    _index_lock: asyncio.Lock
    _index_task: asyncio.Task[int] | None
    _index_at: float
    _index_delay: float
    _failed_sidecars: set[Path]
    _retry_at: dict[Path, float]

    @property
    def own_dir(self) -> Path:
        raise NotImplementedError

    def _rolls_at(self, at: datetime) -> datetime:
        raise NotImplementedError

    async def _finish_provisional(self, seg: Segment, ended: datetime) -> ClosedSegment | None:
        """Hash the finished provisional file and leave it, with its sidecar, pending index."""
        assert seg.sidecar is not None
        size = digest = None
        if seg.spool.exists():
            # On the disk before the sidecar says "closed" with its hash: after a power cut the hash must still
            # describe the file (the sidecar itself is fsync'd).
            await asyncio.to_thread(fsync_file, seg.spool)
            size, digest = await asyncio.to_thread(sha256_file, seg.spool)
        if not size:
            # Nothing was written (the encoder could not start): no evidence to keep, no row to make.
            await asyncio.to_thread(unlink_all, seg.spool, seg.sidecar)
            log.warning("video: gate %s provisional segment %s: nothing was written (%s)", seg.gate_id,
                        seg.name, seg.failed or "no frames")
            return None
        status = "closed" if seg.failed is None else "incomplete"
        side = await asyncio.to_thread(read_json, seg.sidecar)
        side.update(state="closed", ended_at=ended.isoformat(), frames=seg.written, bytes=size, sha256=digest,
                    status=status, note=PROVISIONAL_NOTE if status == "closed" else f"{seg.failed}; {PROVISIONAL_NOTE}")
        await asyncio.to_thread(write_json, seg.sidecar, side)
        self._add_pending(seg.sidecar, side)
        self._metrics.closed(seg.gate_id, status)
        log.info("video: gate %s provisional segment %s %s: %d frames (%d left out), %d bytes; waits to be indexed",
                 seg.gate_id, seg.name, status, seg.written, seg.dropped, size)
        self._kick_index()
        return ClosedSegment(None, seg.gate_id, None, seg.started_at, ended, seg.written, size, digest, status)

    async def _apply_close(self, closing: dict[str, Any]) -> bool:
        # Also fills a row that retention's sweep of abandoned rows ended as "nothing was saved" meanwhile.
        done = await self.pool.execute(
            """UPDATE video_segments SET ended_at = $2, frames = $3, bytes = $4, sha256 = $5, status = $6, note = $7
                WHERE id = $1 AND deleted_at IS NULL
                  AND (status = 'recording' OR (bytes IS NULL AND sha256 IS NULL AND $4::bigint IS NOT NULL))""",
            closing["id"], datetime.fromisoformat(closing["ended_at"]), closing["frames"], closing["bytes"],
            closing["sha256"], closing["status"], closing["note"],
        )
        return not done.endswith(" 0")

    # ---- indexing what waits in the spool -----------------------------------------------------------

    def _add_pending(self, sidecar: Path, side: dict[str, Any]) -> None:
        self._pending[sidecar] = side
        self._metrics.pending(len(self._pending))

    def _kick_index(self) -> None:
        """Index pending segments in the background, unless a pass is running or the backoff says wait."""
        if (not self._pending or self._closed or time.monotonic() < self._index_at
                or (self._index_task is not None and not self._index_task.done())):
            return
        self._index_task = asyncio.create_task(self.index_pending(), name="video-index-pending")

    async def index_pending(self) -> int:
        """Index the finished segments waiting in the spool; return how many were indexed.

        Never raises: while the database is down the rest waits (next try after a doubling delay); a segment
        that fails for another reason is logged once and retried on its own, a minute later, while the others go on.
        """
        async with self._index_lock:
            indexed = 0
            for sidecar in sorted(self._pending):
                if time.monotonic() < self._retry_at.get(sidecar, 0.0):
                    continue
                side = self._pending[sidecar]
                try:
                    if side["kind"] == "close":
                        await self._upload_closed(sidecar, side)
                        await self._apply_close(side)
                    else:
                        await self._index_provisional(sidecar, side)
                    await asyncio.to_thread(unlink_all, sidecar)
                except Exception as exc:  # noqa: BLE001 - see docstring
                    if is_db_down(exc) or isinstance(exc, StoreUnavailable):
                        self._index_at = time.monotonic() + self._index_delay
                        self._index_delay = min(INDEX_RETRY_MAX_SECONDS, self._index_delay * 2)
                        break
                    self._retry_at[sidecar] = time.monotonic() + INDEX_RETRY_MAX_SECONDS
                    if sidecar not in self._failed_sidecars:
                        self._failed_sidecars.add(sidecar)
                        log.exception("video: cannot index %s yet (left in the spool, retried later)", sidecar)
                    continue
                del self._pending[sidecar]
                self._failed_sidecars.discard(sidecar)
                self._retry_at.pop(sidecar, None)
                # Camera segments always take this path (their rows are made once they are finished): not late.
                indexed += side["kind"] == "provisional"
            else:
                self._index_delay = INDEX_RETRY_SECONDS
            self._metrics.pending(len(self._pending))
            if indexed:
                self._metrics.indexed_late(indexed)
                log.warning("video: indexed %d segment(s) recorded while the database was down; %d still pending",
                            indexed, len(self._pending))
                await asyncio.to_thread(self._tidy)
            return indexed

    async def add_finished(self, sidecar: Path, side: dict[str, Any]) -> None:
        """A segment another writer finished (a camera's stream copy, ``kind: camera``), its sidecar written
        beside its file: index it like a provisional one, now or when the database and the store answer."""
        self._add_pending(sidecar, side)
        self._kick_index()

    async def _upload_closed(self, sidecar: Path, side: dict[str, Any]) -> None:
        """A segment that had its row but closed while the media store was away: upload it now (its row is
        filled after, by the caller). After a crash between the upload and the sidecar's removal the file is
        already in the store, and the repeat only fills the row."""
        if not side.get("file"):
            return
        path = sidecar.parent / side["file"]
        if await asyncio.to_thread(path.exists):
            blob = await self.store.put_file(side["storage_key"], path, move=True)
            if blob.sha256 != side["sha256"]:
                log.error("video: segment %d file changed in the spool after it closed (sha256 %s, hashed %s)",
                          side["id"], blob.sha256, side["sha256"])
                side.update(bytes=blob.bytes, sha256=blob.sha256, status="incomplete", note=CHANGED_NOTE)
        elif not await self.store.exists(side["storage_key"]):
            log.error("video: segment %d (%s) is gone from the spool and the store", side["id"], side["file"])

    async def _index_provisional(self, sidecar: Path, side: dict[str, Any]) -> None:
        # Four steps, each safe to repeat after a crash anywhere; the sidecar goes last (by the caller).
        side = await self._reserve(sidecar, side)
        side = await self._verify(sidecar, side)
        # The file before the row: a row must never point at a key the store does not have (a failed move
        # would leave one, and retention could mark it deleted before the file arrives and never remove it).
        # A crash in between leaves a file without a row, which the repeat, still holding the sidecar, fills.
        await self._move_file(sidecar, side)
        await self._insert_row(sidecar, side)
        log.info("video: gate %s provisional segment %s indexed as segment %d", side["gate_id"], sidecar.stem,
                 side["id"])

    async def _reserve(self, sidecar: Path, side: dict[str, Any]) -> dict[str, Any]:
        """1. Choose the id and key and keep them in the sidecar: a repeat after a crash makes the same row."""
        if side.get("id") is not None:
            return side
        started = datetime.fromisoformat(side["started_at"])
        seg_id = await self.pool.fetchval("SELECT nextval(pg_get_serial_sequence('video_segments', 'id'))")
        key = media_key("video", side["gate_id"], started,
                        f"{started.astimezone(timezone.utc):%Y%m%dT%H%M%S}Z-{seg_id}.mp4")
        return await self._update_sidecar(sidecar, {**side, "id": seg_id, "storage_key": key})

    async def _update_sidecar(self, sidecar: Path, side: dict[str, Any]) -> dict[str, Any]:
        await asyncio.to_thread(write_json, sidecar, side)
        if sidecar in self._pending:  # a later pass, after a failure below, reuses what was written
            self._pending[sidecar] = side
        return side

    async def _verify(self, sidecar: Path, side: dict[str, Any]) -> dict[str, Any]:
        """2. Hash the spool file again: the row must carry the hash of the file it points at, even if the file
        lost its tail in a power cut after the sidecar was written. Kept in the sidecar before the move, so a
        repeat (the file then in the store) inserts the same row."""
        path = sidecar.parent / side["file"]
        if not await asyncio.to_thread(path.exists):
            return side
        size, digest = await asyncio.to_thread(sha256_file, path)
        if (size, digest) == (side["bytes"], side["sha256"]):
            return side
        log.error("video: provisional segment %s changed after it closed (%s bytes, indexed as %d); kept as "
                  "incomplete", sidecar.stem, side["bytes"], size)
        return await self._update_sidecar(sidecar, {
            **side, "bytes": size, "sha256": digest, "frames": None, "status": "incomplete",
            "note": f"{CHANGED_NOTE}; {PROVISIONAL_NOTE}"})

    async def _move_file(self, sidecar: Path, side: dict[str, Any]) -> None:
        """3. The file into the store under its key (after a crash it may be there already)."""
        seg_id, key = side["id"], side["storage_key"]
        path = sidecar.parent / side["file"]
        if await asyncio.to_thread(path.exists):
            blob = await self.store.put_file(key, path, move=True)
            if blob.sha256 != side["sha256"]:
                log.error("video: segment %d file changed in the spool after it closed (sha256 %s, indexed %s)",
                          seg_id, blob.sha256, side["sha256"])
        elif not await self.store.exists(key):
            log.error("video: segment %d (%s) is indexed but its file is gone from the spool and the store", seg_id,
                      side["file"])

    async def _insert_row(self, sidecar: Path, side: dict[str, Any]) -> None:
        """4. The whole row in one statement; already there (a pass that crashed after it) is fine."""
        seg_id, key = side["id"], side["storage_key"]
        async with self.pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO video_segments (id, gate_id, started_at, ended_at, storage_key, status, fps, width,
                                              height, frames, bytes, sha256, note, recorder, camera_id, codec)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                   ON CONFLICT (id) DO NOTHING""",
                seg_id, side["gate_id"], datetime.fromisoformat(side["started_at"]),
                datetime.fromisoformat(side["ended_at"]), key, side["status"], side["fps"], side["width"],
                side["height"], side["frames"], side["bytes"], side["sha256"], side["note"], side["recorder"],
                side.get("camera_id"), side.get("codec"),
            )
            row = await conn.fetchrow("SELECT storage_key, sha256 FROM video_segments WHERE id = $1", seg_id)
        if row is None or row["storage_key"] != key or row["sha256"] != side["sha256"]:
            raise RuntimeError(f"video segment {seg_id} exists with another key or hash than {sidecar.name} says")

    async def recover(self) -> int:
        """Index what a previous run of this recorder, or a dead one's directory, left in the spool (it stopped
        while recording); return how many segment files were indexed.

        Files of segments it was still writing lack the MP4 index written at close, so they are kept as evidence
        but marked incomplete. Provisional segments and closing values left by a database outage are indexed
        here too (or, while the database is still down, by the background pass later).
        """
        if self._lock_fd is None:
            try:
                self._lock_fd = await asyncio.to_thread(lock_own, self.own_dir, self.lock_wait)
            except SpoolLocked:
                # Another live service of this host name uses this data dir: a misconfiguration, but video must
                # never keep the gates from deciding. Record under a name of this process; its directory is
                # taken over like a dead recorder's once this process is gone.
                taken = self.recorder_id
                self.recorder_id = f"{taken}-{os.getpid()}"
                log.error("video: spool %s is locked by another running service named %r on this data dir; "
                          "recording as %r (give every service its own host name)", self.own_dir.parent / taken,
                          taken, self.recorder_id)
                self._lock_fd = await asyncio.to_thread(lock_own, self.own_dir, self.lock_wait)
        files, sidecars, legacy_files, legacy_sidecars = await asyncio.to_thread(self._scan_spool)
        await self._load_sidecars(sidecars)
        await self._load_sidecars(legacy_sidecars, legacy=True)
        open_now = {gate.segment.spool for gate in self._gates.values() if gate.segment is not None}
        # Files whose closing values wait in a sidecar (the store was away when they closed) are not abandoned.
        open_now |= {sidecar.parent / side["file"] for sidecar, side in self._pending.items() if side.get("file")}
        recovered = 0
        for path in [*files, *legacy_files]:
            if not path.stem.isdigit() or path in open_now:
                continue
            row = await self.pool.fetchrow(
                "SELECT id, storage_key, started_at, status, bytes, sha256, deleted_at, recorder FROM video_segments "
                "WHERE id = $1", int(path.stem))
            if path.parent == self.spool_dir and (row is None or row["recorder"] != self.recorder_id):
                continue  # the flat spool of an earlier version, shared: another host's file is its own business
            # A row another host's start already ended as "nothing was saved" (it was a dead recorder's, adopted
            # here) still gets its file.
            if row is None or row["deleted_at"] is not None or not (
                    row["status"] == "recording" or (row["bytes"] is None and row["sha256"] is None)):
                log.warning("video: spool file %s has no open segment row; left in place", path)
                continue
            blob = await self.store.put_file(row["storage_key"], path, move=True)
            await self.pool.execute(
                """UPDATE video_segments SET ended_at = $2, bytes = $3, sha256 = $4,
                          status = 'incomplete', note = 'service stopped while recording'
                   WHERE id = $1 AND deleted_at IS NULL AND (status = 'recording' OR (bytes IS NULL AND sha256 IS NULL))""",
                row["id"], self._cut_short_end(row["started_at"]), blob.bytes, blob.sha256,
            )
            recovered += 1
        # Rows whose closing values wait in a sidecar are not abandoned: the pass below fills them.
        closing = [side["id"] for side in self._pending.values() if side["kind"] == "close"]
        stale = await self.pool.execute(
            """UPDATE video_segments SET ended_at = started_at, status = 'incomplete',
                      note = 'service stopped while recording; nothing was saved'
               WHERE status = 'recording' AND recorder = $1 AND id <> ALL($2::bigint[])""",
            self.recorder_id, closing,
        )
        if recovered or not stale.endswith(" 0"):
            log.warning("video: recovered %d segment file(s) from the spool; %s other row(s) ended", recovered,
                        stale.split()[-1])
        indexed = await self.index_pending()
        await asyncio.to_thread(self._tidy)
        return recovered + indexed

    def _cut_short_end(self, started: datetime) -> datetime:
        # A file cut short has no MP4 index, so its length is unknown; its mtime is the server's clock while
        # started_at is the kiosk's. The slot's end bounds it in the kiosk's time: a passage anywhere in the slot
        # finds the file (handed over whole, as evidence), and a later segment of the gate is preferred anyway.
        return self._rolls_at(started)

    def _scan_spool(self) -> tuple[list[Path], list[Path], list[Path], list[Path]]:
        """(files, sidecars) of this recorder's own tree, after adopting dead recorders' directories, and
        (files, sidecars) of the flat spool an earlier version wrote (filtered by owner afterwards)."""
        own = self.own_dir
        if self.spool_dir.is_dir():
            for sub in sorted(self.spool_dir.iterdir()):
                if sub.is_dir() and sub != own:
                    adopt(sub, own)
        for tmp in own.rglob("*.json.tmp"):  # a sidecar write cut short: the old sidecar stands
            tmp.unlink(missing_ok=True)
        flat = self.spool_dir
        return (sorted(own.rglob("*.mp4")), sorted(own.rglob("*.json")),
                sorted(flat.glob("*.mp4")) if flat.is_dir() else [],
                sorted(flat.glob("*.json")) if flat.is_dir() else [])

    def _tidy(self) -> None:
        """Remove adopted directories nothing is left in (their lock file aside)."""
        own = self.own_dir
        if not own.is_dir():
            return
        for top, dirs, names in os.walk(own, topdown=False):
            path = Path(top)
            if path == own or dirs or any(name != LOCK_NAME for name in names):
                continue
            if path.relative_to(own).parts[:1] == ("cameras",):
                continue  # a camera's ffmpeg may be about to open its next segment there
            with contextlib.suppress(OSError):
                (path / LOCK_NAME).unlink(missing_ok=True)
                path.rmdir()

    async def _mine(self, side: dict[str, Any]) -> bool:
        """Whether a sidecar in the flat spool of an earlier version was written by this recorder."""
        if "recorder" in side:
            return side["recorder"] == self.recorder_id
        # Closing values written before they named their recorder: the row does.
        owner = await self.pool.fetchval("SELECT recorder FROM video_segments WHERE id = $1", side.get("id"))
        return owner == self.recorder_id

    async def _load_sidecars(self, sidecars: list[Path], *, legacy: bool = False) -> None:
        open_now = {gate.segment.sidecar for gate in self._gates.values() if gate.segment is not None}
        for sidecar in sidecars:
            if sidecar in self._pending or sidecar in open_now:
                continue
            try:
                side = await asyncio.to_thread(read_json, sidecar)
            except (OSError, ValueError):
                if not legacy:
                    log.error("video: unreadable sidecar %s; left in place", sidecar)
                continue
            if legacy and not await self._mine(side):
                continue
            if side.get("kind") == "provisional" and side.get("state") == "recording":
                # A run stopped while recording it: keep the file as evidence, marked incomplete.
                path = sidecar.parent / side["file"]
                if not path.exists() or path.stat().st_size == 0:
                    await asyncio.to_thread(unlink_all, path, sidecar)
                    log.warning("video: provisional segment %s of gate %s: nothing was saved", sidecar.stem,
                                side["gate_id"])
                    continue
                size, digest = await asyncio.to_thread(sha256_file, path)
                started = datetime.fromisoformat(side["started_at"])
                ended = (datetime.fromisoformat(side["rolls_at"]) if side.get("rolls_at")
                         else self._cut_short_end(started))
                side.update(state="closed", ended_at=ended.isoformat(), frames=None, bytes=size,
                            sha256=digest, status="incomplete",
                            note=f"service stopped while recording; {PROVISIONAL_NOTE}")
                await asyncio.to_thread(write_json, sidecar, side)
            if side.get("kind") in ("provisional", "close", "camera"):
                self._add_pending(sidecar, side)
            else:
                log.error("video: unknown sidecar %s; left in place", sidecar)
