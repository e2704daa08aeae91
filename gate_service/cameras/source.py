"""One camera pulled over RTSP by an ffmpeg subprocess: frames to the reader, finished segments to the recorder.

Why a subprocess and not PyAV: a camera's demuxer or decoder that hangs or crashes takes one process down, not
the service; a reconnect is a restart; the kernel accounts CPU per camera; ffmpeg's segment muxer writes the
stream-copy segments itself (cut on the clock, a valid MP4 each), so the event loop only reads a few JPEGs a
second from a pipe. PyAV would put decoding and muxing of every camera into this process (each packet through
Python, the GIL between cameras), and its wheels bring an FFmpeg of their own beside OpenCV's. Frigate, the
NVR this follows, runs one ffmpeg per camera the same way.

The process is restarted with backoff (1 s doubling to 30 s; back to 1 s after a minute of good streaming).
Finished segments are announced by ffmpeg's segment list (one CSV line per closed file); files left when the
process ends (the camera went away, ffmpeg was killed) are finished too, with the length ffprobe finds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from gate_service.cameras.ffmpeg import SEGMENT_PATTERN, CameraCommand, JpegSplitter
from gate_service.cameras.redact import redact_text, redact_url

log = logging.getLogger(__name__)

BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET_AFTER = 1.0, 30.0, 60.0
LIST_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class CameraConfig:
    id: str
    gate_id: str
    rtsp_url: str
    roles: tuple[str, ...]
    read_fps: float = 5.0
    direction: str = "in"
    vendor: str = "generic"
    name: str | None = None

    @property
    def redacted_url(self) -> str:
        return redact_url(self.rtsp_url)


@dataclass
class FinishedSegment:
    camera: CameraConfig
    path: Path
    started_at: datetime
    seconds: float | None  # from ffmpeg's list; None: ask ffprobe (the process ended before listing it)
    cut_short: bool = False


@dataclass
class CameraState:
    connected: bool = False
    state: str = "starting"
    last_frame_at: datetime | None = None
    errors: int = 0
    reconnects: int = 0
    last_error: str | None = None
    connected_since: float | None = None
    segments: int = 0
    _frames: deque[float] = field(default_factory=lambda: deque(maxlen=64))

    def frame(self, at: datetime) -> None:
        self.last_frame_at = at
        self._frames.append(time.monotonic())

    @property
    def fps(self) -> float:
        """Frames per second handed to the reader over the last ~10 s."""
        now = time.monotonic()
        recent = [t for t in self._frames if now - t <= 10.0]
        if len(recent) < 2:
            return 0.0
        return round((len(recent) - 1) / max(1e-3, recent[-1] - recent[0]), 2)

    def to_json(self) -> dict[str, Any]:
        return {"connected": self.connected, "state": self.state, "fps": self.fps,
                "last_frame_at": self.last_frame_at.isoformat() if self.last_frame_at else None,
                "errors": self.errors, "reconnects": self.reconnects, "last_error": self.last_error,
                "segments_recorded": self.segments}


OnFrame = Callable[[CameraConfig, bytes, datetime], Awaitable[None]]
OnSegment = Callable[[FinishedSegment], Awaitable[None]]


def segment_start(path: Path) -> datetime | None:
    """The UTC start in a segment's name (``cam-20250106T020000Z.mp4``)."""
    try:
        return datetime.strptime(path.name, SEGMENT_PATTERN).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


class CameraSource:
    def __init__(self, camera: CameraConfig, work_dir: Path, *, on_frame: OnFrame | None, on_segment: OnSegment | None,
                 segment_seconds: float = 600.0, ffmpeg: str | None = None, timeout_seconds: float = 5.0) -> None:
        self.camera = camera
        self.work_dir = Path(work_dir)
        self.on_frame = on_frame if "read" in camera.roles else None
        self.on_segment = on_segment if "record" in camera.roles else None
        self.segment_seconds = segment_seconds
        self.ffmpeg = ffmpeg or shutil.which("ffmpeg")
        self.timeout_seconds = timeout_seconds
        self.state = CameraState()
        self._task: asyncio.Task[None] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._listed: set[str] = set()
        self._frame_tasks: set[asyncio.Task[None]] = set()
        self.current_segment_started: datetime | None = None

    @property
    def recording(self) -> bool:
        return self.on_segment is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"camera-{self.camera.id}")

    async def stop(self) -> None:
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            # "q" on stdin is ffmpeg's clean stop, but -nostdin is set; SIGINT also writes the trailers.
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(2)
            try:
                await asyncio.wait_for(process.wait(), timeout=5)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=30)
        await self._finish_leftovers()

    # ---- the loop -------------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        await self._finish_leftovers()  # what a previous run (or a crash) left in the camera's directory
        while not self._stopping:
            started = time.monotonic()
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a camera's trouble must not stop the others
                self._error(f"{type(exc).__name__}: {exc}")
                log.exception("camera %s (%s): source failed", self.camera.id, self.camera.redacted_url)
            self.state.connected = False
            self.state.connected_since = None
            self.current_segment_started = None
            await self._finish_leftovers()
            if self._stopping:
                break
            if time.monotonic() - started > BACKOFF_RESET_AFTER:
                delay = BACKOFF_FIRST
            self.state.state = "reconnecting"
            self.state.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(BACKOFF_MAX, delay * 2)
        self.state.state = "stopped"

    async def _run_once(self) -> None:
        if self.ffmpeg is None:
            self.state.state = "error"
            raise RuntimeError("ffmpeg is not installed (apt-get install ffmpeg)")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "segments.csv").unlink(missing_ok=True)
        self._listed = set()
        command = CameraCommand(self.camera.rtsp_url, self.camera.read_fps if self.on_frame else None,
                                self.work_dir if self.on_segment else None, segment_seconds=self.segment_seconds,
                                timeout_seconds=self.timeout_seconds)
        self.state.state = "connecting"
        # TZ=UTC: the segment names' strftime is the wall clock in UTC, whatever the host's zone.
        env = {**os.environ, "TZ": "UTC"}
        self._process = process = await asyncio.create_subprocess_exec(
            *command.argv(self.ffmpeg), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
        log.info("camera %s of gate %s: pulling %s (%s)", self.camera.id, self.camera.gate_id,
                 self.camera.redacted_url, ",".join(self.camera.roles))
        stderr_tail: deque[str] = deque(maxlen=5)
        watchers = [asyncio.create_task(self._read_stderr(process, stderr_tail))]
        if self.on_segment is not None:
            watchers.append(asyncio.create_task(self._watch_list(process)))
        try:
            if self.on_frame is not None:
                await self._read_frames(process)
            await process.wait()
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            for task in watchers:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            # The camera went away (not a stop): the segment ffmpeg closed last was cut short by it.
            await self._drain_list(last_cut_short=not self._stopping)
        if not self._stopping:
            tail = " | ".join(stderr_tail) or f"ffmpeg exited with {process.returncode}"
            self._error(redact_text(tail))
            log.warning("camera %s of gate %s: stream ended (%s); reconnecting", self.camera.id,
                        self.camera.gate_id, redact_text(tail))

    async def _read_frames(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        splitter = JpegSplitter()
        while True:
            chunk = await process.stdout.read(1 << 16)
            if not chunk:
                return
            for jpeg in splitter.feed(chunk):
                at = datetime.now(timezone.utc)
                self._connected()
                self.state.frame(at)
                if self.on_frame is not None:
                    task = asyncio.create_task(self.on_frame(self.camera, jpeg, at))
                    self._frame_tasks.add(task)
                    task.add_done_callback(self._frame_tasks.discard)

    async def _read_stderr(self, process: asyncio.subprocess.Process, tail: deque[str]) -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            text = line.decode("utf-8", "replace").strip()
            # Timestamp grumbles about the camera's first packets are noise; real trouble ends the process.
            if text and "Non-monotonous DTS" not in text and "deprecated" not in text:
                tail.append(text[:300])

    def _connected(self) -> None:
        if not self.state.connected:
            self.state.connected = True
            self.state.connected_since = time.monotonic()
            self.state.state = "streaming"
            log.info("camera %s of gate %s: streaming", self.camera.id, self.camera.gate_id)

    def _error(self, message: str) -> None:
        self.state.errors += 1
        self.state.last_error = message[:500]

    # ---- segments -------------------------------------------------------------------------------

    async def _watch_list(self, process: asyncio.subprocess.Process) -> None:
        while process.returncode is None:
            await asyncio.sleep(LIST_POLL_SECONDS)
            await self._drain_list()
            current = await asyncio.to_thread(self._current_file)
            if current is not None:
                # A record-only camera sends no frames to count: a growing segment is the sign of life.
                self._connected()
                self.current_segment_started = segment_start(current)

    def _current_file(self) -> Path | None:
        files = sorted(p for p in self.work_dir.glob("cam-*.mp4")
                       if p.name not in self._listed and not p.with_suffix(".json").exists())
        return files[-1] if files else None

    async def _drain_list(self, *, last_cut_short: bool = False) -> None:
        if self.on_segment is None:
            return
        lines = await asyncio.to_thread(_read_lines, self.work_dir / "segments.csv")
        for number, line in enumerate(lines, start=1):
            name, _, rest = line.partition(",")
            if not name or name in self._listed:
                continue
            try:
                start, end = (float(x) for x in rest.split(",")[:2])
            except ValueError:
                continue
            self._listed.add(name)
            path = self.work_dir / name
            started = segment_start(path)
            if started is None or not path.exists():
                continue
            await self._hand_over(FinishedSegment(self.camera, path, started, max(0.0, end - start),
                                                  cut_short=last_cut_short and number == len(lines)))

    async def _finish_leftovers(self) -> None:
        """Files no ffmpeg writes any more (ended, killed, or a previous run's): finished as they are."""
        if self.on_segment is None or not self.work_dir.is_dir():
            return
        if self._process is not None and self._process.returncode is None:
            return
        await self._drain_list()
        for path in sorted(self.work_dir.glob("cam-*.mp4")):
            if path.with_suffix(".json").exists():
                continue  # already handed over; its sidecar is the recorder's
            started = segment_start(path)
            if started is None:
                continue
            await self._hand_over(FinishedSegment(self.camera, path, started, None, cut_short=True))

    async def _hand_over(self, segment: FinishedSegment) -> None:
        assert self.on_segment is not None
        try:
            await self.on_segment(segment)
            self.state.segments += 1
        except Exception:  # noqa: BLE001 - left in place: the next pass over leftovers tries again
            log.exception("camera %s: could not hand over segment %s", self.camera.id, segment.path.name)

    def covers(self, at: datetime) -> datetime | None:
        """When the segment being written now, if it covers ``at``, will be finished (for the clip endpoint)."""
        started = self.current_segment_started
        if started is None or at < started:
            return None
        ends = started + timedelta(seconds=self.segment_seconds)
        return ends if at < ends + timedelta(seconds=5) else None


def _read_lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def probe(path: Path, ffprobe: str | None = None) -> dict[str, Any]:
    """What ffprobe says of a recorded segment: codec, size, frame rate, duration, packets (blocking)."""
    import subprocess

    binary = ffprobe or shutil.which("ffprobe") or "ffprobe"
    out = subprocess.run(
        [binary, "-v", "error", "-select_streams", "v:0", "-count_packets",
         "-show_entries", "stream=codec_name,profile,width,height,r_frame_rate,avg_frame_rate,nb_read_packets,"
                          "pix_fmt:format=duration",
         "-of", "json", str(path)], capture_output=True, timeout=120, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"ffprobe failed on {path.name}: {out.stderr.decode('utf-8', 'replace')[-300:]}")
    data = json.loads(out.stdout or b"{}")
    streams = data.get("streams") or []
    if not streams:
        raise RuntimeError(f"{path.name} has no video stream")
    stream = streams[0]
    return {
        "codec": stream.get("codec_name"), "profile": stream.get("profile"), "pix_fmt": stream.get("pix_fmt"),
        "width": int(stream.get("width") or 0), "height": int(stream.get("height") or 0),
        "fps": _rate(stream.get("r_frame_rate")) or _rate(stream.get("avg_frame_rate")),
        "frames": int(stream["nb_read_packets"]) if str(stream.get("nb_read_packets", "")).isdigit() else None,
        "duration": float(data.get("format", {}).get("duration") or 0.0) or None,
    }


def _rate(text: str | None) -> float | None:
    if not text or "/" not in text:
        return None
    num, den = text.split("/", 1)
    try:
        value = float(num) / float(den)
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None
