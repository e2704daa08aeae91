"""The cameras of every gate, pulled while the service runs: started from the registry, restarted when an
admin changes one, their state in /metrics, /healthz and the kiosk page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from gate_service import keys
from gate_service.cameras import store
from gate_service.cameras.recording import SegmentHandover, camera_dir
from gate_service.cameras.source import CameraConfig, CameraSource

log = logging.getLogger(__name__)

STATE_SECONDS = 2.0


class StreamRecorded:
    """Stands in for the kiosk-frame recorder at a gate whose camera records its own stream: frames read from
    it are not encoded a second time; their passage finds its clip by gate and time."""

    async def add_frame(self, gate_id: str, at: datetime, image: Any) -> tuple[int | None, int]:
        return None, 0


class CameraManager:
    def __init__(self, app: web.Application, *, segment_seconds: float | None = None,
                 timeout_seconds: float = 5.0) -> None:
        self.app = app
        recorder = app.get(keys.VIDEO_RECORDER)
        self.segment_seconds = segment_seconds or float(getattr(recorder, "segment_seconds", 600.0))
        self.timeout_seconds = timeout_seconds
        self.sources: dict[str, CameraSource] = {}
        self._lock = asyncio.Lock()
        self._state_task: asyncio.Task[None] | None = None
        registry = app[keys.METRICS].registry
        self._connected = registry.gauge("cleangate_camera_connected", "1 while the camera streams, by camera and gate")
        self._fps = registry.gauge("cleangate_camera_fps", "Frames per second handed to the reader, by camera")
        self._age = registry.gauge("cleangate_camera_last_frame_age_seconds",
                                   "Seconds since the camera's last frame (-1: none yet), by camera")
        self._errors = registry.gauge("cleangate_camera_errors", "Stream errors since start (each one a reconnect)")
        self._segments = registry.gauge("cleangate_camera_segments_recorded", "Segments recorded by stream copy")
        self.frames_submitted = registry.counter("cleangate_camera_frames_total",
                                                 "Frames from cameras handed to the plate reader, by camera")

    async def start(self) -> None:
        for row in await store.list_for(self.app[keys.POOL], enabled_only=True):
            await self._start(row)
        self._state_task = asyncio.create_task(self._publish_state(), name="camera-state")

    async def close(self) -> None:
        if self._state_task is not None:
            self._state_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._state_task
        async with self._lock:
            for camera_id in list(self.sources):
                await self._stop(camera_id)

    async def reload(self, camera_id: str) -> None:
        """The registry changed this camera: stop what runs, start what the row now says."""
        async with self._lock:
            await self._stop(camera_id)
            row = await store.get(self.app[keys.POOL], camera_id)
            if row is not None and row["enabled"]:
                await self._start_locked(row)

    def status(self, gate_id: str | None = None) -> list[dict[str, Any]]:
        return [{"camera_id": s.camera.id, "gate_id": s.camera.gate_id, "roles": list(s.camera.roles),
                 "rtsp_url": s.camera.redacted_url, **s.state.to_json()}
                for s in self.sources.values() if gate_id is None or s.camera.gate_id == gate_id]

    def summary(self) -> dict[str, int]:
        return {"total": len(self.sources), "connected": sum(s.state.connected for s in self.sources.values())}

    # ---- internals --------------------------------------------------------------------------------

    async def _start(self, row: dict[str, Any]) -> None:
        async with self._lock:
            await self._start_locked(row)

    async def _start_locked(self, row: dict[str, Any]) -> None:
        camera = CameraConfig(row["id"], row["gate_id"], row["rtsp_url"], tuple(row["roles"]),
                              float(row["read_fps"]), row["direction"], row["vendor"], row.get("name"))
        recorder = self.app.get(keys.VIDEO_RECORDER)
        records = "record" in camera.roles and recorder is not None
        source = CameraSource(
            camera, camera_dir(recorder, camera.id) if recorder is not None else self._fallback_dir(camera.id),
            on_frame=self._frame, on_segment=SegmentHandover(recorder) if records else None,
            segment_seconds=self.segment_seconds, timeout_seconds=self.timeout_seconds)
        self.sources[camera.id] = source
        if records:
            recorder.live_sources.setdefault(camera.gate_id, []).append(source.covers)
        self._route_video(camera.gate_id)
        source.start()

    async def _stop(self, camera_id: str) -> None:
        source = self.sources.pop(camera_id, None)
        if source is None:
            return
        await source.stop()
        recorder = self.app.get(keys.VIDEO_RECORDER)
        if recorder is not None:
            lives = recorder.live_sources.get(source.camera.gate_id, [])
            with contextlib.suppress(ValueError):
                lives.remove(source.covers)
        self._route_video(source.camera.gate_id)
        for gauge in (self._connected, self._fps, self._age, self._errors, self._segments):
            gauge.set(0, camera=camera_id, gate=source.camera.gate_id)

    def _route_video(self, gate_id: str) -> None:
        """Frames of a gate with a recording camera are not re-encoded by the kiosk-frame recorder."""
        hub = self.app.get(keys.GATES)
        if hub is None:
            return
        ingest = hub.ingest(gate_id)
        streamed = any(s.recording for s in self.sources.values() if s.camera.gate_id == gate_id)
        ingest.recorder = StreamRecorded() if streamed else self.app.get(keys.VIDEO_RECORDER)

    def _fallback_dir(self, camera_id: str) -> Any:
        from pathlib import Path

        return Path(self.app[keys.SETTINGS].data_dir) / "spool" / "cameras" / camera_id

    async def _frame(self, camera: CameraConfig, jpeg: bytes, at: datetime) -> None:
        from gate_service.gates.ingest import Overloaded

        hub = self.app.get(keys.GATES)
        if hub is None:
            return
        self.frames_submitted.inc(camera=camera.id)
        try:
            await hub.ingest(camera.gate_id).submit(jpeg, direction=camera.direction, at=at)
        except Overloaded:
            pass  # the reader is saturated: the next frame is along in 1/read_fps s
        except Exception:  # noqa: BLE001 - one bad frame must not stop the stream
            log.exception("camera %s: frame not read", camera.id)

    async def _publish_state(self) -> None:
        while True:
            now = datetime.now(timezone.utc)
            for source in list(self.sources.values()):
                labels = {"camera": source.camera.id, "gate": source.camera.gate_id}
                state = source.state
                self._connected.set(1 if state.connected else 0, **labels)
                self._fps.set(state.fps, **labels)
                self._age.set((now - state.last_frame_at).total_seconds() if state.last_frame_at else -1, **labels)
                self._errors.set(state.errors, **labels)
                self._segments.set(state.segments, **labels)
            await asyncio.sleep(STATE_SECONDS)


CAMERAS: web.AppKey[CameraManager] = web.AppKey("cameras", CameraManager)


async def cameras_context(app: web.Application) -> AsyncIterator[None]:
    """App cleanup context, after the gates hub: pull every enabled camera of the registry."""
    manager = CameraManager(app)
    app[CAMERAS] = manager
    if app[keys.SETTINGS].pull_cameras:
        try:
            await manager.start()
        except Exception:  # noqa: BLE001 - the gates decide from kiosks' frames even without the cameras
            log.exception("cameras: could not start the camera sources")
    yield
    await manager.close()
