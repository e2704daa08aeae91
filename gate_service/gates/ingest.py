"""Frames in, passages out: plate reading off the event loop, stale-frame dropping, the tracker, the judge.

One ``GateIngest`` per gate. Reading a frame takes tens of milliseconds of CPU, so it runs in a thread
pool sized to the cores (onnxruntime releases the GIL). A gate that sends faster than it can be read
keeps only its newest waiting frame: the older waiting one is answered as dropped, so memory and latency
stay bounded whatever a kiosk does.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import queue
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import cv2
import numpy as np

from gate_service.gates.tracker import Settled, Tracker, TrackerConfig, WouldDeny
from plate_reader.image import decode_image
from plate_reader.reader import DEFAULT_ENGINE, PlateRead, PlateReader

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """Every reader is busy and the backlog is full: the kiosk should retry after a moment."""


class ReaderPool:
    """One reader per worker thread, each with model sessions of its own, created once.

    A reader's PP-OCRv4 recogniser and text detector serialise ``session.run`` by a lock, so one reader shared by
    the threads ran only one gate's recognition or detection at a time and left a core idle (the detector is half
    the own engine's reading time under the ingest benchmark). A thread takes a free reader for each frame: with
    as many readers as threads one is always free.
    """

    def __init__(self, workers: int | None = None, *, backlog_per_worker: int = 2, local_provinces: str = "",
                 engine: str = "") -> None:
        # Provinces most plates at these gates carry (晋 in Linfen): tips close calls at position 1 only.
        self.local_provinces = local_provinces
        self.engine = engine or DEFAULT_ENGINE  # CLEANGATE_PLATE_ENGINE
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        # Frames being read or queued for a thread, across all gates. Beyond this the service sheds new
        # frames at once (503) rather than let every gate's latency grow.
        self.max_inflight = self.workers * (1 + backlog_per_worker)
        self.inflight = 0
        self.executor = ThreadPoolExecutor(self.workers, thread_name_prefix="plate-reader")
        self._readers: list[PlateReader] = []
        self._free: queue.SimpleQueue[PlateReader] = queue.SimpleQueue()
        self._loading: asyncio.Future[list[PlateReader]] | None = None

    def _load_one(self) -> PlateReader:
        reader = PlateReader(self.engine, threads=1, local_provinces=self.local_provinces)
        # The text detector is made on its first use; made here, no gate's first fallback waits for it.
        if reader.paddle is None:
            reader.detector  # noqa: B018 - the property loads it
        return reader

    async def readers(self) -> list[PlateReader]:
        """Every reader, loaded side by side on first use."""
        if not self._readers:
            if self._loading is None:
                loop = asyncio.get_running_loop()
                self._loading = asyncio.ensure_future(asyncio.gather(
                    *[loop.run_in_executor(self.executor, self._load_one) for _ in range(self.workers)]))
            loaded = await self._loading
            if not self._readers:
                self._readers = list(loaded)
                for reader in loaded:
                    self._free.put(reader)
        return self._readers

    async def reader(self) -> PlateReader:
        """One of the readers, for work outside the gates' frames (the video audit)."""
        return (await self.readers())[0]

    async def read(self, data: bytes, still_since: np.ndarray | None = None, *, fallback: bool = True,
                   quick: bool = False) -> tuple[np.ndarray, np.ndarray, PlateRead | None]:
        """Decode and read a frame; (image, thumbnail, read). The read is None when ``still_since`` is given and
        the frame shows no motion against it: an empty lane is not read again and again. ``quick``: see
        ``PlateReader.read``."""
        await self.readers()
        self.inflight += 1
        try:
            return await self._read(data, still_since, fallback, quick)
        finally:
            self.inflight -= 1

    async def _read(self, data: bytes, still_since: np.ndarray | None, fallback: bool,
                    quick: bool = False) -> tuple[np.ndarray, np.ndarray, PlateRead | None]:

        def work() -> tuple[np.ndarray, np.ndarray, PlateRead | None]:
            image = decode_image(data)
            thumb = thumbnail(image)
            if still_since is not None and not moved(still_since, thumb):
                return image, thumb, None
            reader = self._free.get()  # never waits: a reader per thread
            try:
                return image, thumb, reader.read(image, fallback=fallback, quick=quick)
            finally:
                self._free.put(reader)

        return await asyncio.get_running_loop().run_in_executor(self.executor, work)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class FrameResult:
    read: PlateRead | None = None
    passages: list[dict[str, Any]] = field(default_factory=list)
    dropped: bool = False
    duplicate: bool = False
    still: bool = False  # no motion on an empty lane: not read
    ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        read = None
        if self.read is not None:
            read = {"plate": self.read.plate, "color": self.read.color,
                    "confidence": round(self.read.confidence, 4),
                    "probability": self.read.probability,
                    "box": list(self.read.box) if self.read.box else None}
        return {
            "read": read,
            "passage": self.passages[-1] if self.passages else None,
            "passages": self.passages,
            "dropped": self.dropped,
            "duplicate": self.duplicate,
            "still": self.still,
            "ms": round(self.ms, 1),
        }


OnSettled = Callable[[str, Settled, str], Awaitable[dict[str, Any]]]


@dataclass
class _Pending:
    data: bytes
    at: datetime
    direction: str
    future: asyncio.Future[FrameResult]
    token_id: int | None = None  # whose frame: the passage it settles into names the kiosk's token


class GateIngest:
    def __init__(self, gate_id: str, pool: ReaderPool, on_settled: OnSettled, *, metrics: Any = None,
                 recorder: Any = None, tracker_config: TrackerConfig | None = None,
                 would_deny: WouldDeny | None = None) -> None:
        self.gate_id = gate_id
        self.pool = pool
        self.on_settled = on_settled
        self.metrics = metrics
        self.recorder = recorder
        self.tracker = Tracker(tracker_config, would_deny=would_deny)
        self._busy = False
        self._pending: _Pending | None = None
        self._last_digest: bytes | None = None
        self._lock = asyncio.Lock()
        self.listeners: set[Callable[[dict[str, Any]], Awaitable[None]]] = set()
        self.direction = "in"
        self.latest: tuple[datetime, bytes] | None = None
        self._empty_thumb: np.ndarray | None = None
        self._settled_thumb: np.ndarray | None = None
        self._misses = 0  # consecutive read frames without a plate
        self._behind = False  # a frame went stale since the last read began

    async def submit(self, data: bytes, *, direction: str = "in", at: datetime | None = None,
                     token_id: int | None = None) -> FrameResult:
        at = at or datetime.now(timezone.utc)
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if digest == self._last_digest:
            # A kiosk re-sending the same picture: nothing new to read, and the video must not stutter.
            return FrameResult(duplicate=True)
        self._last_digest = digest
        self.direction = direction
        if not self._busy and self.pool.inflight >= self.pool.max_inflight:
            self._count_drop("overload")
            self._last_digest = None
            raise Overloaded()
        future: asyncio.Future[FrameResult] = asyncio.get_running_loop().create_future()
        if self._pending is not None:
            stale = self._pending
            stale.future.set_result(FrameResult(dropped=True))
            self._count_drop()
            self._behind = True
        self._pending = _Pending(data, at, direction, future, token_id)
        self._set_depth()
        if not self._busy:
            self._busy = True
            asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending is not None:
                item, self._pending = self._pending, None
                self._set_depth()
                try:
                    result = await self._process(item)
                except Exception as exc:  # noqa: BLE001 - a bad frame is answered, the gate goes on
                    if not item.future.done():
                        item.future.set_exception(exc)
                else:
                    if not item.future.done():
                        item.future.set_result(result)
        finally:
            self._busy = False

    async def _process(self, item: _Pending) -> FrameResult:
        started = time.perf_counter()
        # Like a camera NVR, read only when something moved: since the last frame of an empty lane, or since
        # the last frame of a vehicle already recorded (a lorry waiting at the barrier is not read for minutes).
        still_ref = self._empty_thumb if self._empty_thumb is not None else self._settled_thumb
        # The text-detection pass costs ~10x the colour search. After two frames in a row with no plate even
        # with it (people walking, the side of a lorry), try it only on every third frame until a plate shows.
        fallback = self._misses < 2 or (self._misses - 2) % 3 == 2
        # A gate that had to drop a frame while reading the last one is behind its camera: this read skips the
        # text-detection pass, so the gate is back on the newest frame sooner (a stale frame's costly fallback
        # only delays reading the frames after it). Without drops nothing changes.
        fallback, self._behind = fallback and not self._behind, False
        # A vehicle already recorded, read in the last frame and still moving in view (creeping to the barrier)
        # only needs to be seen again to keep its stop open: a quick read. A frame where the quick read finds no
        # plate (it left, or the next vehicle's plate is a hard one) sends the next frame back to a full read.
        quick = self.tracker.current_settled and self._misses == 0
        image, thumb, read = await self.pool.read(item.data, still_ref, fallback=fallback, quick=quick)
        video = await self._record_video(item.at, image)
        if read is None:
            if self.metrics is not None:
                self.metrics.frames_still.inc(gate=self.gate_id)
            self.latest = (item.at, item.data)
            async with self._lock:
                if self._settled_thumb is not None:
                    self.tracker.hold(item.at)  # still there: the same stop, however long
                settled = self.tracker.tick(item.at)
                passages = [await self.on_settled(self.gate_id, s, item.direction) for s in settled]
            return FrameResult(read=PlateRead(None, "unknown", 0.0, None), passages=passages, still=True,
                               ms=(time.perf_counter() - started) * 1000)
        self._empty_thumb = thumb if not read.plate else None
        self._settled_thumb = None
        self._misses = 0 if read.plate else self._misses + 1
        if self.metrics is not None:
            self.metrics.frames_read.inc(gate=self.gate_id, mode="quick" if quick else "full")
            self.metrics.frame_seconds.observe(time.perf_counter() - started)
        payload = {"jpeg": item.data, "video": video, "token_id": item.token_id}
        self.latest = (item.at, item.data)
        async with self._lock:
            settled = self.tracker.feed(read, item.at, payload)
            result = FrameResult(read=read, ms=(time.perf_counter() - started) * 1000)
            # Every watcher of the gate (the guard's screen, a second kiosk) sees each read as it happens.
            await self.notify({"type": "read", "read": result.to_json()["read"], "ms": round(result.ms, 1),
                               "at": item.at.isoformat(), "tracking": self.tracker.current_plate})
            result.passages = [await self.on_settled(self.gate_id, s, item.direction) for s in settled]
            if read.plate and self.tracker.current_settled:
                self._settled_thumb = thumb
        return result

    async def _record_video(self, at: datetime, image: np.ndarray) -> tuple[int | None, int | None]:
        if self.recorder is None:
            return (None, None)
        try:
            return await self.recorder.add_frame(self.gate_id, at, image)
        except Exception:  # noqa: BLE001 - video trouble must not stop the gate deciding
            log.exception("video recording failed for gate %s", self.gate_id)
            return (None, None)

    async def notify(self, message: dict[str, Any]) -> None:
        for send in list(self.listeners):
            try:
                await send(message)
            except Exception:  # noqa: BLE001 - a closed socket must not stop the others
                self.listeners.discard(send)

    async def tick(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Settle a vehicle that has left without a frame to tell us (called periodically)."""
        async with self._lock:
            settled = self.tracker.tick(now or datetime.now(timezone.utc))
            return [await self.on_settled(self.gate_id, s, self.direction) for s in settled]

    def _count_drop(self, reason: str = "stale") -> None:
        if self.metrics is not None:
            self.metrics.frames_dropped.inc(gate=self.gate_id, reason=reason)

    def _set_depth(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.set(1 if self._pending else 0, gate=self.gate_id)


def thumbnail(image: np.ndarray) -> np.ndarray:
    small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.int16)


# Mean absolute grey-level change on the thumbnail that counts as motion: sensor noise and JPEG artefacts
# stay well below it, a vehicle entering the picture goes far above it.
MOTION_THRESHOLD = 3.0


def moved(before: np.ndarray, after: np.ndarray) -> bool:
    return float(np.mean(np.abs(after - before))) >= MOTION_THRESHOLD


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode JPEG")
    return buf.tobytes()
