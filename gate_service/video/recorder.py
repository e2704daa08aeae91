"""Each gate's incoming frames recorded as MP4 segments, indexed in ``video_segments``.

Video time follows wall time: a segment is written at a fixed frame rate, a frame goes into the slot its
timestamp falls in, missing slots repeat the previous picture, and a second frame for a slot already written
is left out. So "offset ms after the segment's start" means the same in the ledger and in the player, however
irregularly a kiosk sends. A pause longer than ``max_gap_seconds`` starts a new segment instead of filling.

Encoding runs in a small thread pool, fed through a bounded per-segment queue: ``add_frame`` never waits on
the encoder; when the encoder falls behind, frames are left out of the video (the picture before them stays
on screen) and counted, never queued without bound.

Each recorder writes into a spool directory of its own, ``<spool>/<recorder id>/``, and holds an ``flock`` on
its ``.lock`` while it runs: replicas may share the data dir (NFS), and a directory whose lock can be taken
belongs to no running recorder. At start a recorder recovers its own directory and adopts every other unlocked
one (a dead replica's) by renaming it into its own; files an earlier version left in the flat ``<spool>`` are
recovered only by the recorder they name.

While PostgreSQL is unreachable, video is still recorded. A segment that cannot get its ``video_segments`` row
is written to the spool under a provisional name (``p-….mp4``) beside a JSON sidecar (gate, start, fps, size,
recorder); it rolls and closes as usual, and its finished file waits there, "pending index", until a
background pass (riding on the idle loop, with backoff) indexes it. Indexing is exactly once whatever crashes
in between: the segment id and storage key are chosen and written into the sidecar first, the file is moved into
the store, the row is inserted with that id (``ON CONFLICT DO NOTHING``), and only then is the sidecar removed;
every step can be repeated. A segment that had its row but closes during the outage leaves its
closing values in a ``close-<id>.json`` sidecar, applied the same way. Frames recorded provisionally get
segment id None from ``add_frame``; the clip endpoint finds their segment by gate and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import cv2
import numpy as np
from aiohttp import web

from gate_service.db.outage import is_db_down
from gate_service.video.storage import BlobStore, key_part, media_key, open_store, sha256_file

log = logging.getLogger(__name__)

OPEN_RETRY_SECONDS = 5.0
# Opening a segment is two short statements: past this, record provisionally rather than stall the gate.
OPEN_TIMEOUT_SECONDS = 5.0
# Indexing what waits in the spool: first retry after this, doubling up to the maximum, while the database is down.
INDEX_RETRY_SECONDS = 1.0
INDEX_RETRY_MAX_SECONDS = 60.0
# Shutdown waits at most this long for a running index pass, then as long again for a last one.
CLOSE_INDEX_SECONDS = 10.0
# At start, how long to wait for this recorder's own spool lock (a previous run of this host still stopping, or
# another recorder adopting the directory right now) before giving up.
LOCK_WAIT_SECONDS = 10.0
LOCK_NAME = ".lock"
PROVISIONAL_NOTE = "recorded while the database was unreachable; indexed afterwards"
CHANGED_NOTE = "the file changed after it closed (a power cut before it reached the disk?)"
FOURCC = "mp4v"  # MPEG-4 Part 2 in MP4: encodes with the FFmpeg built into opencv-python, no network codecs.
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class _Segment:
    id: int | None  # None: provisional (recorded while the database was down), see ``sidecar``
    gate_id: str
    key: str | None
    started_at: datetime
    rolls_at: datetime
    shape: tuple[int, ...]
    spool: Path
    fps: float
    # (slot, image); image None pads up to the slot with the last picture (at close).
    queue: asyncio.Queue[tuple[int, np.ndarray | None] | None]
    last_at: datetime
    last_seen: float
    next_slot: int = 0
    task: asyncio.Task[None] | None = None
    # Touched only by the encoding thread (one batch at a time per segment).
    writer: Any = None
    written: int = 0
    last_image: np.ndarray | None = None
    failed: str | None = None
    dropped: int = 0
    sidecar: Path | None = None  # provisional segments: the JSON beside the spool file

    @property
    def name(self) -> str:
        return str(self.id) if self.id is not None else self.spool.stem


@dataclass
class _Gate:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    segment: _Segment | None = None
    # After a failed open: when to ask the database again (meanwhile segments go provisional at once), or, when
    # even the local disk failed, when to try recording again; ``failing`` keeps that to one log line.
    retry_at: float = 0.0
    failing: bool = False


@dataclass(frozen=True)
class ClosedSegment:
    """A closed segment; ``id`` and ``key`` are None while a provisional one waits to be indexed."""

    id: int | None
    gate_id: str
    key: str | None
    started_at: datetime
    ended_at: datetime
    frames: int
    bytes: int | None
    sha256: str | None
    status: str


class VideoRecorder:
    """One open segment per gate; ``add_frame`` returns where the frame can be seen.

    Keeps a reference to each image until it is encoded: callers must not modify an image after handing it in.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        store: BlobStore,
        *,
        spool_dir: Path,
        segment_seconds: float = 600,
        fps: float = 5.0,
        max_gap_seconds: float = 10.0,
        idle_seconds: float = 30.0,
        queue_frames: int = 25,
        threads: int | None = None,
        metrics: Any = None,
        recorder_id: str | None = None,
        lock_wait: float = LOCK_WAIT_SECONDS,
    ) -> None:
        if segment_seconds <= 0 or fps <= 0:
            raise ValueError("segment_seconds and fps must be positive")
        self.pool = pool
        self.store = store
        self.spool_dir = Path(spool_dir)
        self.segment_seconds = float(segment_seconds)
        self.fps = float(fps)
        self.max_gap = timedelta(seconds=max_gap_seconds)
        self.idle_seconds = idle_seconds
        self.queue_frames = queue_frames
        self.recorder_id = recorder_id or socket.gethostname()
        self.lock_wait = lock_wait  # for a previous run of this host to let go of its spool directory
        self._lock_fd: int | None = None
        self._gates: dict[str, _Gate] = {}
        self._closing: set[asyncio.Task[ClosedSegment | None]] = set()
        # Encoding is CPU work that releases the GIL; a few threads, so the plate reader keeps the cores.
        self._executor = ThreadPoolExecutor(
            max_workers=threads or max(1, min(4, (os.cpu_count() or 2) // 2)), thread_name_prefix="video")
        self._idle_task: asyncio.Task[None] | None = None
        self._closed = False
        self.frames_written = 0
        self.frames_left_out = 0
        self._metrics = _Metrics(metrics)
        # Sidecars of finished segments waiting to be indexed (provisional ``p-*.json``, ``close-<id>.json``).
        self._pending: dict[Path, dict[str, Any]] = {}
        self._index_lock = asyncio.Lock()
        self._index_task: asyncio.Task[int] | None = None
        self._index_at = 0.0
        self._index_delay = INDEX_RETRY_SECONDS
        self._failed_sidecars: set[Path] = set()
        # A sidecar that failed for another reason than an outage waits on its own: the others go on.
        self._retry_at: dict[Path, float] = {}
        # Provisional segments between their roll and their sidecar's "closed" (or stuck there after a failure):
        # their video is on this host, so the clip endpoint answers "later", not "no video".
        self._finishing: dict[Path, _Segment] = {}
        self._outage = False  # logged once: "recording to local disk" … "database back"

    # ---- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover segments a previous run left open, then close idle segments in the background."""
        await self.recover()
        self._idle_task = asyncio.create_task(self._close_idle(), name="video-idle-closer")

    async def close(self) -> None:
        """Flush every open segment (shutdown)."""
        self._closed = True
        if self._idle_task is not None:
            self._idle_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._idle_task
        for gate_id in list(self._gates):
            await self.close_gate(gate_id)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self._index_task is not None:
            # Bounded: a pass stuck on a database that hangs (not refusing) must not stall the shutdown.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._index_task, timeout=CLOSE_INDEX_SECONDS)
        if self._pending:
            # One last try; what is still pending stays in the spool for the next start's recover().
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.index_pending(), timeout=CLOSE_INDEX_SECONDS)
        self._executor.shutdown(wait=True)
        # Released last: from here on another recorder may adopt what is left in the directory.
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def own_dir(self) -> Path:
        """This recorder's spool directory (locked while it runs)."""
        return self.spool_dir / key_part(self.recorder_id)

    # ---- recording --------------------------------------------------------------------------------

    async def add_frame(self, gate_id: str, at: datetime, image: np.ndarray) -> tuple[int | None, int]:
        """Record one frame; return (segment id, offset in ms from the segment's start).

        The segment id is None (and the offset 0) when the frame was recorded into a provisional segment while
        the database is unreachable (its clip is found later by gate and time), or could not be recorded at all
        (disk trouble is logged, never raised: recording must not stop a gate from deciding).
        """
        if self._closed:
            return None, 0
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        if image.ndim not in (2, 3) or image.dtype != np.uint8 or image.size == 0:
            log.warning("video: gate %s sent a frame that is not an 8-bit image (%s %s)", gate_id, image.dtype,
                        image.shape)
            return None, 0
        gate = self._gates.setdefault(gate_id, _Gate())
        async with gate.lock:
            seg = gate.segment
            if seg is not None and (at >= seg.rolls_at or at - seg.last_at > self.max_gap
                                    or image.shape != seg.shape):
                self._detach(gate)
                seg = None
            if seg is None:
                seg = gate.segment = await self._open_any(gate, gate_id, at, image.shape)
                if seg is None:
                    return None, 0
            seg.last_seen = time.monotonic()
            seg.last_at = max(seg.last_at, at)
            offset = max(0, int((at - seg.started_at) / timedelta(milliseconds=1)))
            slot = int(math.floor(offset * seg.fps / 1000))
            if slot < seg.next_slot:
                # Faster than the frame rate (or late): this slot already has its picture.
                self._left_out(seg)
                return (seg.id, offset) if seg.id is not None else (None, 0)
            seg.next_slot = slot + 1
            try:
                seg.queue.put_nowait((slot, image))
            except asyncio.QueueFull:
                self._left_out(seg)
            # A provisional segment has no id yet: the passage finds its clip by gate and time instead.
            return (seg.id, offset) if seg.id is not None else (None, 0)

    async def close_gate(self, gate_id: str) -> ClosedSegment | None:
        """Close the gate's open segment now (e.g. the kiosk disconnected); return what was written."""
        gate = self._gates.get(gate_id)
        if gate is None:
            return None
        async with gate.lock:
            task = self._detach(gate)
        return await task if task is not None else None

    def open_segment_id(self, gate_id: str) -> int | None:
        gate = self._gates.get(gate_id)
        return gate.segment.id if gate is not None and gate.segment is not None else None

    def unindexed_until(self, gate_id: str, at: datetime) -> datetime | None:
        """When video of ``gate_id`` at ``at`` recorded here but not indexed yet should be indexed; else None.

        Covers the open provisional segment (indexed after it closes) and finished files waiting in the spool.
        """
        gate = self._gates.get(gate_id)
        seg = gate.segment if gate is not None else None
        if seg is not None and seg.id is None and seg.started_at <= at < seg.rolls_at:
            return seg.rolls_at
        for seg in self._finishing.values():
            if seg.gate_id == gate_id and seg.started_at <= at < seg.rolls_at:
                return datetime.now(timezone.utc) + timedelta(seconds=self._index_delay)
        for side in self._pending.values():
            if side.get("kind") == "provisional" and side["gate_id"] == gate_id:
                started = datetime.fromisoformat(side["started_at"])
                ended = datetime.fromisoformat(side["ended_at"])
                if started <= at <= ended:
                    return datetime.now(timezone.utc) + timedelta(seconds=self._index_delay)
        return None

    @property
    def pending_index(self) -> int:
        """Finished segments waiting in the spool to be indexed."""
        return len(self._pending)

    # ---- internals --------------------------------------------------------------------------------

    def _left_out(self, seg: _Segment) -> None:
        seg.dropped += 1
        self.frames_left_out += 1
        self._metrics.left_out(seg.gate_id)

    async def _open_any(self, gate: _Gate, gate_id: str, at: datetime, shape: tuple[int, ...]) -> _Segment | None:
        """A segment with its row when the database answers, else a provisional one in the spool."""
        if time.monotonic() >= gate.retry_at:
            try:
                seg = await asyncio.wait_for(self._open(gate_id, at, shape), OPEN_TIMEOUT_SECONDS)
            except Exception as exc:  # noqa: BLE001 - recording must not stop a gate from deciding
                # Not on every segment: while the database is down, go provisional at once for a while.
                gate.retry_at = time.monotonic() + OPEN_RETRY_SECONDS
                if not self._outage:
                    self._outage = True
                    log.warning("video: cannot index new segments (%s: %s); recording to local disk in %s until "
                                "the database is back, then indexing", type(exc).__name__, exc, self.spool_dir,
                                exc_info=not is_db_down(exc))
            else:
                if self._outage:
                    self._outage = False
                    log.warning("video: database reachable again (gate %s): new segments are indexed at once; "
                                "%d finished segment(s) wait to be indexed", gate_id, len(self._pending))
                    self._index_at, self._index_delay = 0.0, INDEX_RETRY_SECONDS
                    self._kick_index()
                self._recording_again(gate, gate_id)
                return seg
        try:
            seg = await self._open_provisional(gate_id, at, shape)
        except Exception:  # noqa: BLE001 - disk trouble: nothing can be recorded now; try again shortly
            if not gate.failing:
                log.exception("video: cannot record gate %s even to local disk (retrying every %.0f s)", gate_id,
                              OPEN_RETRY_SECONDS)
            gate.failing, gate.retry_at = True, time.monotonic() + OPEN_RETRY_SECONDS
            return None
        self._recording_again(gate, gate_id)
        return seg

    @staticmethod
    def _recording_again(gate: _Gate, gate_id: str) -> None:
        if gate.failing:
            log.warning("video: recording again at gate %s", gate_id)
            gate.failing = False

    def _rolls_at(self, at: datetime) -> datetime:
        # Segments end on wall-clock boundaries (…:00, …:10, … for 10 minutes): one file per gate per slot.
        since = (at - _EPOCH).total_seconds()
        return _EPOCH + timedelta(seconds=(math.floor(since / self.segment_seconds) + 1) * self.segment_seconds)

    async def _open_provisional(self, gate_id: str, at: datetime, shape: tuple[int, ...]) -> _Segment:
        height, width = shape[:2]
        name = f"p-{at.astimezone(timezone.utc):%Y%m%dT%H%M%S}Z-{uuid.uuid4().hex[:12]}"
        sidecar = self.own_dir / f"{name}.json"
        rolls_at = self._rolls_at(at)
        # The sidecar exists before the file: a provisional file never lacks what is needed to index it.
        await asyncio.to_thread(_write_json, sidecar, {
            "kind": "provisional", "state": "recording", "gate_id": gate_id, "started_at": at.isoformat(),
            "rolls_at": rolls_at.isoformat(), "fps": self.fps, "width": width, "height": height,
            "recorder": self.recorder_id, "file": f"{name}.mp4",
        })
        seg = _Segment(
            id=None, gate_id=gate_id, key=None, started_at=at, rolls_at=rolls_at, shape=tuple(shape),
            spool=self.own_dir / f"{name}.mp4", fps=self.fps, queue=asyncio.Queue(self.queue_frames),
            last_at=at, last_seen=time.monotonic(), sidecar=sidecar,
        )
        seg.task = asyncio.create_task(self._drain(seg), name=f"video-{gate_id}-{name}")
        self._metrics.provisional(gate_id)
        log.info("video: gate %s provisional segment %s opened at %s (database unreachable)", gate_id, name,
                 at.isoformat())
        return seg

    async def _open(self, gate_id: str, at: datetime, shape: tuple[int, ...]) -> _Segment:
        height, width = shape[:2]
        rolls_at = self._rolls_at(at)
        async with self.pool.acquire() as conn:
            seg_id = await conn.fetchval("SELECT nextval(pg_get_serial_sequence('video_segments', 'id'))")
            key = media_key("video", gate_id, at, f"{at.astimezone(timezone.utc):%Y%m%dT%H%M%S}Z-{seg_id}.mp4")
            await conn.execute(
                """INSERT INTO video_segments (id, gate_id, started_at, storage_key, fps, width, height, recorder)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                seg_id, gate_id, at, key, self.fps, width, height, self.recorder_id,
            )
        seg = _Segment(
            id=seg_id, gate_id=gate_id, key=key, started_at=at, rolls_at=rolls_at, shape=tuple(shape),
            spool=self.own_dir / f"{seg_id}.mp4", fps=self.fps, queue=asyncio.Queue(self.queue_frames),
            last_at=at, last_seen=time.monotonic(),
        )
        seg.task = asyncio.create_task(self._drain(seg), name=f"video-{gate_id}-{seg_id}")
        log.info("video: gate %s segment %d opened at %s", gate_id, seg_id, at.isoformat())
        return seg

    def _detach(self, gate: _Gate) -> asyncio.Task[ClosedSegment | None] | None:
        # Closing (flush, hash, move, index) runs in the background: the next segment starts at once.
        seg, gate.segment = gate.segment, None
        if seg is None:
            return None
        if seg.id is None:
            self._finishing[seg.spool] = seg
        task = asyncio.create_task(self._finish(seg), name=f"video-close-{seg.name}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        return task

    async def _drain(self, seg: _Segment) -> None:
        loop = asyncio.get_running_loop()
        done = False
        while not done:
            batch = [await seg.queue.get()]
            while not seg.queue.empty():
                batch.append(seg.queue.get_nowait())
            if None in batch:
                batch = batch[: batch.index(None)]
                done = True
            if batch:
                try:
                    written = await loop.run_in_executor(self._executor, _encode, seg, batch)
                except Exception as exc:  # noqa: BLE001 - an encoder failure ends this segment, not the service
                    seg.failed = f"encoder error: {exc}"
                    log.exception("video: segment %s encoder failed", seg.name)
                    written = 0
                self.frames_written += written
                self._metrics.written(seg.gate_id, written)

    async def _finish(self, seg: _Segment) -> ClosedSegment | None:
        try:
            if seg.next_slot > 0:
                # Frames left out at the end still count as time: the video lasts as long as the slots taken.
                await seg.queue.put((seg.next_slot - 1, None))
            await seg.queue.put(None)
            if seg.task is not None:
                await seg.task
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, _release, seg)
            ended = seg.started_at + timedelta(seconds=seg.written / seg.fps)
            if seg.id is None:
                closed = await self._finish_provisional(seg, ended)
                # Only now: until its sidecar is pending (or both files are gone), "later" is the true answer.
                self._finishing.pop(seg.spool, None)
                return closed
            assert seg.key is not None
            size = digest = None
            if seg.spool.exists():
                blob = await self.store.put_file(seg.key, seg.spool, move=True)
                size, digest = blob.bytes, blob.sha256
            status = "closed" if seg.failed is None and size else "incomplete"
            note = seg.failed if status == "incomplete" else None
            if status == "incomplete" and note is None:
                note = "no video was written"
            closing = {"kind": "close", "id": seg.id, "recorder": self.recorder_id, "ended_at": ended.isoformat(), "frames": seg.written,
                       "bytes": size, "sha256": digest, "status": status, "note": note}
            try:
                await self._apply_close(closing)
            except Exception as exc:
                if not is_db_down(exc):
                    raise
                # The file is safe in the store; its closing values wait in the spool until the database is back.
                sidecar = self.own_dir / f"close-{seg.id}.json"
                await asyncio.to_thread(_write_json, sidecar, closing)
                self._add_pending(sidecar, closing)
                log.warning("video: gate %s segment %d closed while the database is unreachable; indexed later",
                            seg.gate_id, seg.id)
            self._metrics.closed(seg.gate_id, status)
            log.info("video: gate %s segment %d %s: %d frames (%d left out), %s bytes", seg.gate_id, seg.id,
                     status, seg.written, seg.dropped, size)
            return ClosedSegment(seg.id, seg.gate_id, seg.key, seg.started_at, ended, seg.written, size, digest,
                                 status)
        except Exception:  # noqa: BLE001 - the row stays 'recording'; recovery or the retention sweep ends it
            log.exception("video: closing segment %s failed", seg.name)
            return None

    async def _finish_provisional(self, seg: _Segment, ended: datetime) -> ClosedSegment | None:
        """Hash the finished provisional file and leave it, with its sidecar, pending index."""
        assert seg.sidecar is not None
        size = digest = None
        if seg.spool.exists():
            # On the disk before the sidecar says "closed" with its hash: after a power cut the hash must still
            # describe the file (the sidecar itself is fsync'd).
            await asyncio.to_thread(_fsync, seg.spool)
            size, digest = await asyncio.to_thread(sha256_file, seg.spool)
        if not size:
            # Nothing was written (the encoder could not start): no evidence to keep, no row to make.
            await asyncio.to_thread(_unlink, seg.spool, seg.sidecar)
            log.warning("video: gate %s provisional segment %s: nothing was written (%s)", seg.gate_id,
                        seg.name, seg.failed or "no frames")
            return None
        status = "closed" if seg.failed is None else "incomplete"
        side = await asyncio.to_thread(_read_json, seg.sidecar)
        side.update(state="closed", ended_at=ended.isoformat(), frames=seg.written, bytes=size, sha256=digest,
                    status=status, note=PROVISIONAL_NOTE if status == "closed" else f"{seg.failed}; {PROVISIONAL_NOTE}")
        await asyncio.to_thread(_write_json, seg.sidecar, side)
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
                        await self._apply_close(side)
                    else:
                        await self._index_provisional(sidecar, side)
                    await asyncio.to_thread(_unlink, sidecar)
                except Exception as exc:  # noqa: BLE001 - see docstring
                    if is_db_down(exc):
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
        await asyncio.to_thread(_write_json, sidecar, side)
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
                                              height, frames, bytes, sha256, note, recorder)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (id) DO NOTHING""",
                seg_id, side["gate_id"], datetime.fromisoformat(side["started_at"]),
                datetime.fromisoformat(side["ended_at"]), key, side["status"], side["fps"], side["width"],
                side["height"], side["frames"], side["bytes"], side["sha256"], side["note"], side["recorder"],
            )
            row = await conn.fetchrow("SELECT storage_key, sha256 FROM video_segments WHERE id = $1", seg_id)
        if row is None or row["storage_key"] != key or row["sha256"] != side["sha256"]:
            raise RuntimeError(f"video segment {seg_id} exists with another key or hash than {sidecar.name} says")

    async def _close_idle(self) -> None:
        period = max(0.5, min(5.0, self.idle_seconds / 2))
        while True:
            await asyncio.sleep(period)
            self._kick_index()
            now = time.monotonic()
            for gate in list(self._gates.values()):
                seg = gate.segment
                if seg is not None and now - seg.last_seen > self.idle_seconds and not gate.lock.locked():
                    async with gate.lock:
                        if gate.segment is seg:
                            self._detach(gate)

    async def recover(self) -> int:
        """Index what a previous run of this recorder, or a dead one's directory, left in the spool (it stopped
        while recording); return how many segment files were indexed.

        Files of segments it was still writing lack the MP4 index written at close, so they are kept as evidence
        but marked incomplete. Provisional segments and closing values left by a database outage are indexed
        here too (or, while the database is still down, by the background pass later).
        """
        if self._lock_fd is None:
            try:
                self._lock_fd = await asyncio.to_thread(_lock_own, self.own_dir, self.lock_wait)
            except SpoolLocked:
                # Another live service of this host name uses this data dir: a misconfiguration, but video must
                # never keep the gates from deciding. Record under a name of this process; its directory is
                # taken over like a dead recorder's once this process is gone.
                taken = self.recorder_id
                self.recorder_id = f"{taken}-{os.getpid()}"
                log.error("video: spool %s is locked by another running service named %r on this data dir; "
                          "recording as %r (give every service its own host name)", self.own_dir.parent / taken,
                          taken, self.recorder_id)
                self._lock_fd = await asyncio.to_thread(_lock_own, self.own_dir, self.lock_wait)
        files, sidecars, legacy_files, legacy_sidecars = await asyncio.to_thread(self._scan_spool)
        await self._load_sidecars(sidecars)
        await self._load_sidecars(legacy_sidecars, legacy=True)
        open_now = {gate.segment.spool for gate in self._gates.values() if gate.segment is not None}
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
                    _adopt(sub, own)
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
                side = await asyncio.to_thread(_read_json, sidecar)
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
                    await asyncio.to_thread(_unlink, path, sidecar)
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
                await asyncio.to_thread(_write_json, sidecar, side)
            if side.get("kind") in ("provisional", "close"):
                self._add_pending(sidecar, side)
            else:
                log.error("video: unknown sidecar %s; left in place", sidecar)


class SpoolLocked(RuntimeError):
    """A live recorder of the same id holds the spool directory."""


def _lock_own(directory: Path, wait: float) -> int:
    """Lock this recorder's own directory, waiting a little for a previous run (or an adopter) to let go."""
    deadline = time.monotonic() + wait
    while True:
        directory.mkdir(parents=True, exist_ok=True)
        fd = _try_lock(directory)
        if fd is not None:
            return fd
        if time.monotonic() >= deadline:
            raise SpoolLocked(f"video spool {directory} is locked by another running recorder with the same id "
                              "(two services with one host name on one data dir?)")
        time.sleep(0.1)


def _try_lock(directory: Path) -> int | None:
    """An exclusive ``flock`` on ``directory/.lock``; None when a running recorder holds it."""
    path = directory / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except (FileNotFoundError, NotADirectoryError):
        return None  # adopted (renamed away) meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Another recorder may have adopted the directory between our open and our lock: the lock is then on
        # a file that is no longer at this path, and proves nothing about it.
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _adopt(directory: Path, own: Path) -> None:
    """Take over a dead recorder's directory (its lock free) by renaming it into our own.

    Renamed rather than worked on in place: from the rename on, its files are under our lock (no one else can
    take them, sidecar and file always move together), and the dead recorder's host can start again at once,
    in a fresh directory, instead of waiting for us to index what it left.
    """
    fd = _try_lock(directory)
    if fd is None:
        return  # a running recorder's
    try:
        own.mkdir(parents=True, exist_ok=True)
        target = own / f"from-{directory.name}-{uuid.uuid4().hex[:8]}"
        os.rename(directory, target)
        log.warning("video: adopted the spool of stopped recorder %s (%s)", directory.name, target)
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a file's creation or rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically and durably: a crash leaves the old content or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object")
    return data


def _unlink(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _encode(seg: _Segment, batch: list[tuple[int, np.ndarray | None]]) -> int:
    if seg.failed is not None:
        return 0
    if seg.writer is None:
        seg.spool.parent.mkdir(parents=True, exist_ok=True)
        height, width = seg.shape[:2]
        writer = cv2.VideoWriter(str(seg.spool), cv2.VideoWriter_fourcc(*FOURCC), seg.fps, (width, height))
        if not writer.isOpened():
            seg.failed = f"cannot open a {FOURCC} writer for {width}x{height}"
            return 0
        seg.writer = writer
    before = seg.written
    for slot, image in batch:
        if image is None:
            while seg.last_image is not None and seg.written <= slot:
                seg.writer.write(seg.last_image)
                seg.written += 1
            continue
        frame = _bgr(image)
        # Slots skipped by a pause or left out under load show the previous picture: time stays true.
        filler = seg.last_image if seg.last_image is not None else frame
        while seg.written < slot:
            seg.writer.write(filler)
            seg.written += 1
        if seg.written == slot:
            seg.writer.write(frame)
            seg.written += 1
            seg.last_image = frame
    return seg.written - before


def _release(seg: _Segment) -> None:
    if seg.writer is not None:
        seg.writer.release()
        seg.writer = None
    seg.last_image = None


def _bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


class _Metrics:
    def __init__(self, metrics: Any) -> None:
        registry = getattr(metrics, "registry", None)
        self._on = registry is not None
        if self._on:
            self._written = registry.counter("cleangate_video_frames_written_total",
                                             "Frames written to video segments, by gate")
            self._left_out = registry.counter("cleangate_video_frames_left_out_total",
                                              "Frames left out of the video (faster than its frame rate or "
                                              "encoder behind), by gate")
            self._closed = registry.counter("cleangate_video_segments_closed_total",
                                            "Video segments closed, by status")
            self._provisional = registry.counter("cleangate_video_segments_provisional_total",
                                                 "Video segments recorded to local disk while the database was "
                                                 "unreachable, by gate")
            self._indexed_late = registry.counter("cleangate_video_segments_indexed_late_total",
                                                  "Provisional video segments indexed once the database was back")
            self._pending = registry.gauge("cleangate_video_pending_index",
                                           "Finished video segments waiting in the spool to be indexed")

    def written(self, gate_id: str, n: int) -> None:
        if self._on and n:
            self._written.inc(n, gate=gate_id)

    def left_out(self, gate_id: str) -> None:
        if self._on:
            self._left_out.inc(gate=gate_id)

    def closed(self, gate_id: str, status: str) -> None:
        if self._on:
            self._closed.inc(status=status)

    def provisional(self, gate_id: str) -> None:
        if self._on:
            self._provisional.inc(gate=gate_id)

    def indexed_late(self, n: int) -> None:
        if self._on:
            self._indexed_late.inc(n)

    def pending(self, n: int) -> None:
        if self._on:
            self._pending.set(n)


async def video_context(app: web.Application) -> AsyncIterator[None]:
    """App cleanup context: the media store and the recorder (after the database, before the judge)."""
    from gate_service import keys

    settings = app[keys.SETTINGS]
    store = open_store(settings.data_dir)
    app[keys.MEDIA_STORE] = store
    recorder = VideoRecorder(app[keys.POOL], store, spool_dir=Path(settings.data_dir) / "spool" / "video",
                             metrics=app.get(keys.METRICS))
    await recorder.start()
    app[keys.VIDEO_RECORDER] = recorder
    yield
    await recorder.close()
