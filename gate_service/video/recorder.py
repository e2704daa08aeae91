"""Each gate's incoming frames recorded as MP4 segments, indexed in ``video_segments``.

Video time follows wall time: a segment is written at a fixed frame rate, a frame goes into the slot its
timestamp falls in, missing slots repeat the previous picture, and a second frame for a slot already written
is left out. So "offset ms after the segment's start" means the same in the ledger and in the player, however
irregularly a kiosk sends. A pause longer than ``max_gap_seconds`` starts a new segment instead of filling.

Encoding runs in a small thread pool, fed through a bounded per-segment queue: ``add_frame`` never waits on
the encoder; when the encoder falls behind, frames are left out of the video (the picture before them stays
on screen) and counted, never queued without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
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

from gate_service.video.storage import BlobStore, media_key, open_store

log = logging.getLogger(__name__)

OPEN_RETRY_SECONDS = 5.0
FOURCC = "mp4v"  # MPEG-4 Part 2 in MP4: encodes with the FFmpeg built into opencv-python, no network codecs.
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class _Segment:
    id: int
    gate_id: str
    key: str
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


@dataclass
class _Gate:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    segment: _Segment | None = None
    # After a failed open (database down), when to try again: not on every frame, and one log line per outage.
    retry_at: float = 0.0
    failing: bool = False


@dataclass(frozen=True)
class ClosedSegment:
    id: int
    gate_id: str
    key: str
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
        self.recorder_id = socket.gethostname()
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
        self._executor.shutdown(wait=True)

    # ---- recording --------------------------------------------------------------------------------

    async def add_frame(self, gate_id: str, at: datetime, image: np.ndarray) -> tuple[int | None, int]:
        """Record one frame; return (segment id, offset in ms from the segment's start).

        The segment id is None when the frame could not be recorded (database or disk trouble is logged, never
        raised: recording must not stop a gate from deciding).
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
                if time.monotonic() < gate.retry_at:
                    return None, 0
                try:
                    seg = gate.segment = await self._open(gate_id, at, image.shape)
                except Exception:  # noqa: BLE001 - see docstring
                    if not gate.failing:
                        log.exception("video: cannot open a segment for gate %s (retrying every %.0f s)", gate_id,
                                      OPEN_RETRY_SECONDS)
                    gate.failing, gate.retry_at = True, time.monotonic() + OPEN_RETRY_SECONDS
                    return None, 0
                if gate.failing:
                    log.warning("video: recording again at gate %s", gate_id)
                    gate.failing = False
            seg.last_seen = time.monotonic()
            seg.last_at = max(seg.last_at, at)
            offset = max(0, int((at - seg.started_at) / timedelta(milliseconds=1)))
            slot = int(math.floor(offset * seg.fps / 1000))
            if slot < seg.next_slot:
                # Faster than the frame rate (or late): this slot already has its picture.
                self._left_out(seg)
                return seg.id, offset
            seg.next_slot = slot + 1
            try:
                seg.queue.put_nowait((slot, image))
            except asyncio.QueueFull:
                self._left_out(seg)
            return seg.id, offset

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

    # ---- internals --------------------------------------------------------------------------------

    def _left_out(self, seg: _Segment) -> None:
        seg.dropped += 1
        self.frames_left_out += 1
        self._metrics.left_out(seg.gate_id)

    async def _open(self, gate_id: str, at: datetime, shape: tuple[int, ...]) -> _Segment:
        height, width = shape[:2]
        # Segments end on wall-clock boundaries (…:00, …:10, … for 10 minutes): one file per gate per slot.
        since = (at - _EPOCH).total_seconds()
        rolls_at = _EPOCH + timedelta(seconds=(math.floor(since / self.segment_seconds) + 1) * self.segment_seconds)
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
            spool=self.spool_dir / f"{seg_id}.mp4", fps=self.fps, queue=asyncio.Queue(self.queue_frames),
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
        task = asyncio.create_task(self._finish(seg), name=f"video-close-{seg.id}")
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
                    log.exception("video: segment %d encoder failed", seg.id)
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
            size = digest = None
            if seg.spool.exists():
                blob = await self.store.put_file(seg.key, seg.spool, move=True)
                size, digest = blob.bytes, blob.sha256
            status = "closed" if seg.failed is None and size else "incomplete"
            note = seg.failed if status == "incomplete" else None
            if status == "incomplete" and note is None:
                note = "no video was written"
            for attempt in range(8):
                try:
                    await self.pool.execute(
                        """UPDATE video_segments SET ended_at = $2, frames = $3, bytes = $4, sha256 = $5,
                                  status = $6, note = $7 WHERE id = $1 AND status = 'recording'""",
                        seg.id, ended, seg.written, size, digest, status, note,
                    )
                    break
                except (OSError, asyncpg.PostgresConnectionStatusError, asyncpg.CannotConnectNowError,
                        asyncpg.InterfaceError):
                    # The file is safe in the store; keep trying to index it through a short database outage.
                    if attempt == 7 or self._closed:
                        raise
                    await asyncio.sleep(min(60.0, 2.0 ** attempt))
            self._metrics.closed(seg.gate_id, status)
            log.info("video: gate %s segment %d %s: %d frames (%d left out), %s bytes", seg.gate_id, seg.id,
                     status, seg.written, seg.dropped, size)
            return ClosedSegment(seg.id, seg.gate_id, seg.key, seg.started_at, ended, seg.written, size, digest,
                                 status)
        except Exception:  # noqa: BLE001 - the row stays 'recording'; recovery or the retention sweep ends it
            log.exception("video: closing segment %d failed", seg.id)
            return None

    async def _close_idle(self) -> None:
        period = max(0.5, min(5.0, self.idle_seconds / 2))
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for gate in list(self._gates.values()):
                seg = gate.segment
                if seg is not None and now - seg.last_seen > self.idle_seconds and not gate.lock.locked():
                    async with gate.lock:
                        if gate.segment is seg:
                            self._detach(gate)

    async def recover(self) -> int:
        """Index what a previous run of this host left in the spool (it stopped while recording).

        Such files lack the MP4 index written at close, so they are kept as evidence but marked incomplete.
        """
        files = await asyncio.to_thread(lambda: sorted(self.spool_dir.glob("*.mp4")) if self.spool_dir.is_dir()
                                        else [])
        recovered = 0
        for path in files:
            if not path.stem.isdigit():
                continue
            row = await self.pool.fetchrow(
                "SELECT id, storage_key, started_at, status FROM video_segments WHERE id = $1", int(path.stem))
            if row is None or row["status"] != "recording":
                log.warning("video: spool file %s has no open segment row; left in place", path)
                continue
            mtime = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
            blob = await self.store.put_file(row["storage_key"], path, move=True)
            await self.pool.execute(
                """UPDATE video_segments SET ended_at = greatest(started_at, $2), bytes = $3, sha256 = $4,
                          status = 'incomplete', note = 'service stopped while recording'
                   WHERE id = $1 AND status = 'recording'""",
                row["id"], mtime, blob.bytes, blob.sha256,
            )
            recovered += 1
        stale = await self.pool.execute(
            """UPDATE video_segments SET ended_at = started_at, status = 'incomplete',
                      note = 'service stopped while recording; nothing was saved'
               WHERE status = 'recording' AND recorder = $1""",
            self.recorder_id,
        )
        if recovered or not stale.endswith(" 0"):
            log.warning("video: recovered %d segment file(s) from the spool; %s other row(s) ended", recovered,
                        stale.split()[-1])
        return recovered


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

    def written(self, gate_id: str, n: int) -> None:
        if self._on and n:
            self._written.inc(n, gate=gate_id)

    def left_out(self, gate_id: str) -> None:
        if self._on:
            self._left_out.inc(gate=gate_id)

    def closed(self, gate_id: str, status: str) -> None:
        if self._on:
            self._closed.inc(status=status)


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
