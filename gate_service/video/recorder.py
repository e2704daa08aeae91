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
recovered only by the recorder they name (``spool.py``).

While PostgreSQL is unreachable, video is still recorded. A segment that cannot get its ``video_segments`` row
is written to the spool under a provisional name (``p-….mp4``) beside a JSON sidecar (gate, start, fps, size,
recorder); it rolls and closes as usual, and its finished file waits there, "pending index", until a
background pass (riding on the idle loop, with backoff) indexes it (``indexing.py``: exactly once whatever
crashes in between). A segment that had its row but closes during the outage leaves its
closing values in a ``close-<id>.json`` sidecar, applied the same way. Frames recorded provisionally get
segment id None from ``add_frame``; the clip endpoint finds their segment by gate and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from aiohttp import web

from gate_service.db.outage import is_db_down
from gate_service.video.indexing import CHANGED_NOTE, INDEX_RETRY_SECONDS, PROVISIONAL_NOTE, SpoolIndex
from gate_service.video.recorder_metrics import RecorderMetrics
from gate_service.video.segment import FOURCC, ClosedSegment, Segment, encode_batch, release_writer
from gate_service.video.spool import fsync_file, write_json
from gate_service.video.storage import BlobStore, close_store, key_part, media_key, open_store, sha256_file

log = logging.getLogger(__name__)

__all__ = ["CHANGED_NOTE", "FOURCC", "PROVISIONAL_NOTE", "ClosedSegment", "VideoRecorder", "video_context"]

OPEN_RETRY_SECONDS = 5.0
# Opening a segment is two short statements: past this, record provisionally rather than stall the gate.
OPEN_TIMEOUT_SECONDS = 5.0
# Shutdown waits at most this long for a running index pass, then as long again for a last one.
CLOSE_INDEX_SECONDS = 10.0
# At start, how long to wait for this recorder's own spool lock (a previous run of this host still stopping, or
# another recorder adopting the directory right now) before giving up.
LOCK_WAIT_SECONDS = 10.0
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class _Gate:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    segment: Segment | None = None
    # After a failed open: when to ask the database again (meanwhile segments go provisional at once), or, when
    # even the local disk failed, when to try recording again; ``failing`` keeps that to one log line.
    retry_at: float = 0.0
    failing: bool = False


class VideoRecorder(SpoolIndex):
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
        self._metrics = RecorderMetrics(metrics)
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
        self._finishing: dict[Path, Segment] = {}
        self._outage = False  # logged once: "recording to local disk" … "database back"
        # Writers of this gate's video outside this recorder (cameras recording by stream copy): each answers
        # when the segment it is writing, if it covers a moment, will be finished.
        self.live_sources: dict[str, list[Callable[[datetime], datetime | None]]] = {}

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
        for live in self.live_sources.get(gate_id, ()):
            # A camera's segment being written by its ffmpeg right now: indexed once it is finished.
            ends = live(at)
            if ends is not None:
                return ends + timedelta(seconds=self._index_delay)
        for side in self._pending.values():
            if side.get("kind") in ("provisional", "camera") and side["gate_id"] == gate_id:
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

    def _left_out(self, seg: Segment) -> None:
        seg.dropped += 1
        self.frames_left_out += 1
        self._metrics.left_out(seg.gate_id)

    async def _open_any(self, gate: _Gate, gate_id: str, at: datetime, shape: tuple[int, ...]) -> Segment | None:
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

    async def _open_provisional(self, gate_id: str, at: datetime, shape: tuple[int, ...]) -> Segment:
        height, width = shape[:2]
        name = f"p-{at.astimezone(timezone.utc):%Y%m%dT%H%M%S}Z-{uuid.uuid4().hex[:12]}"
        sidecar = self.own_dir / f"{name}.json"
        rolls_at = self._rolls_at(at)
        # The sidecar exists before the file: a provisional file never lacks what is needed to index it.
        await asyncio.to_thread(write_json, sidecar, {
            "kind": "provisional", "state": "recording", "gate_id": gate_id, "started_at": at.isoformat(),
            "rolls_at": rolls_at.isoformat(), "fps": self.fps, "width": width, "height": height,
            "recorder": self.recorder_id, "file": f"{name}.mp4",
        })
        seg = Segment(
            id=None, gate_id=gate_id, key=None, started_at=at, rolls_at=rolls_at, shape=tuple(shape),
            spool=self.own_dir / f"{name}.mp4", fps=self.fps, queue=asyncio.Queue(self.queue_frames),
            last_at=at, last_seen=time.monotonic(), sidecar=sidecar,
        )
        seg.task = asyncio.create_task(self._drain(seg), name=f"video-{gate_id}-{name}")
        self._metrics.provisional(gate_id)
        log.info("video: gate %s provisional segment %s opened at %s (database unreachable)", gate_id, name,
                 at.isoformat())
        return seg

    async def _open(self, gate_id: str, at: datetime, shape: tuple[int, ...]) -> Segment:
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
        seg = Segment(
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

    async def _drain(self, seg: Segment) -> None:
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
                    written = await loop.run_in_executor(self._executor, encode_batch, seg, batch)
                except Exception as exc:  # noqa: BLE001 - an encoder failure ends this segment, not the service
                    seg.failed = f"encoder error: {exc}"
                    log.exception("video: segment %s encoder failed", seg.name)
                    written = 0
                self.frames_written += written
                self._metrics.written(seg.gate_id, written)

    async def _finish(self, seg: Segment) -> ClosedSegment | None:
        try:
            if seg.next_slot > 0:
                # Frames left out at the end still count as time: the video lasts as long as the slots taken.
                await seg.queue.put((seg.next_slot - 1, None))
            await seg.queue.put(None)
            if seg.task is not None:
                await seg.task
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, release_writer, seg)
            ended = seg.started_at + timedelta(seconds=seg.written / seg.fps)
            if seg.id is None:
                closed = await self._finish_provisional(seg, ended)
                # Only now: until its sidecar is pending (or both files are gone), "later" is the true answer.
                self._finishing.pop(seg.spool, None)
                return closed
            assert seg.key is not None
            size = digest = None
            upload_later = False
            if seg.spool.exists():
                try:
                    blob = await self.store.put_file(seg.key, seg.spool, move=True)
                    size, digest = blob.bytes, blob.sha256
                except OSError as exc:
                    # The store is away (a bucket down, a full disk): the file stays in the spool, hashed, and
                    # its row stays "recording" until the upload is confirmed by the pass below.
                    await asyncio.to_thread(fsync_file, seg.spool)
                    size, digest = await asyncio.to_thread(sha256_file, seg.spool)
                    upload_later = True
                    log.warning("video: gate %s segment %d kept in the spool, the media store failed (%s); "
                                "uploaded later", seg.gate_id, seg.id, exc)
            status = "closed" if seg.failed is None and size else "incomplete"
            note = seg.failed if status == "incomplete" else None
            if status == "incomplete" and note is None:
                note = "no video was written"
            closing = {"kind": "close", "id": seg.id, "recorder": self.recorder_id, "ended_at": ended.isoformat(), "frames": seg.written,
                       "bytes": size, "sha256": digest, "status": status, "note": note}
            if upload_later:
                closing.update(file=seg.spool.name, storage_key=seg.key)
                await self._defer_close(seg, closing)
            else:
                try:
                    await self._apply_close(closing)
                except Exception as exc:
                    if not is_db_down(exc):
                        raise
                    log.warning("video: gate %s segment %d closed while the database is unreachable; indexed "
                                "later", seg.gate_id, seg.id)
                    await self._defer_close(seg, closing)
            self._metrics.closed(seg.gate_id, status)
            log.info("video: gate %s segment %d %s: %d frames (%d left out), %s bytes", seg.gate_id, seg.id,
                     status, seg.written, seg.dropped, size)
            return ClosedSegment(seg.id, seg.gate_id, seg.key, seg.started_at, ended, seg.written, size, digest,
                                 status)
        except Exception:  # noqa: BLE001 - the row stays 'recording'; recovery or the retention sweep ends it
            log.exception("video: closing segment %s failed", seg.name)
            return None

    async def _defer_close(self, seg: Segment, closing: dict[str, Any]) -> None:
        """The closing values wait in the spool, with the file when the store did not take it, until the
        database and the store are back (``index_pending``)."""
        sidecar = self.own_dir / f"close-{seg.id}.json"
        await asyncio.to_thread(write_json, sidecar, closing)
        self._add_pending(sidecar, closing)
        self._kick_index()

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


async def video_context(app: web.Application) -> AsyncIterator[None]:
    """App cleanup context: the media store and the recorder (after the database, before the judge)."""
    from gate_service import keys

    settings = app[keys.SETTINGS]
    store = open_store(settings.data_dir, settings.media_url)
    ensure = getattr(store, "ensure_bucket", None)
    if ensure is not None:
        try:
            await asyncio.wait_for(ensure(), timeout=15)
        except Exception as exc:  # noqa: BLE001 - segments wait in the spool until the store answers
            log.warning("media store %r not reachable at start (%s); media waits on local disk", store, exc)
    app[keys.MEDIA_STORE] = store
    recorder = VideoRecorder(app[keys.POOL], store, spool_dir=Path(settings.data_dir) / "spool" / "video",
                             metrics=app.get(keys.METRICS))
    await recorder.start()
    app[keys.VIDEO_RECORDER] = recorder
    yield
    await recorder.close()
    await close_store(store)
