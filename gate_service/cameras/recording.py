"""A finished stream-copy segment becomes a ``video_segments`` row: probed, hashed, handed to the recorder's index.

The sidecar is written beside the file in the camera's directory (inside the recorder's own spool directory,
so its lock and adoption cover it) and the recorder's index pass does the rest exactly once: id and key into
the sidecar, the file into the media store (confirmed before the local copy goes), the row, the sidecar last.
While the database or the store is away the file simply waits there.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from gate_service.cameras.source import FinishedSegment, probe
from gate_service.video.spool import fsync_file, write_json
from gate_service.video.storage import sha256_file

log = logging.getLogger(__name__)

CUT_SHORT_NOTE = "the camera's stream ended during this segment (reconnected)"


def describe(segment: FinishedSegment, recorder_id: str) -> dict[str, Any] | None:
    """The sidecar of a finished segment (blocking: ffprobe and sha256); None when nothing was written."""
    path = segment.path
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        return None
    fsync_file(path)
    try:
        info = probe(path)
        status, note = "closed", CUT_SHORT_NOTE if segment.cut_short else None
    except Exception as exc:  # noqa: BLE001 - kept as evidence even when unreadable
        info = {"codec": None, "width": 0, "height": 0, "fps": None, "frames": None, "duration": None}
        status, note = "incomplete", f"unreadable: {exc}"[:500]
    seconds = segment.seconds if segment.seconds else info.get("duration") or 0.0
    size, digest = sha256_file(path)
    return {
        "kind": "camera", "state": "closed", "gate_id": segment.camera.gate_id, "camera_id": segment.camera.id,
        "started_at": segment.started_at.isoformat(),
        "ended_at": (segment.started_at + timedelta(seconds=seconds)).isoformat(),
        "fps": round(info["fps"], 3) if info.get("fps") else 25.0,
        "width": info["width"] or 1, "height": info["height"] or 1, "frames": info.get("frames"),
        "codec": info.get("codec"), "bytes": size, "sha256": digest, "status": status, "note": note,
        "recorder": recorder_id, "file": path.name,
    }


class SegmentHandover:
    """``on_segment`` of the camera sources: sidecar beside the file, then the recorder indexes it."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder

    async def __call__(self, segment: FinishedSegment) -> None:
        sidecar = segment.path.with_suffix(".json")
        if sidecar.exists():
            return
        side = await asyncio.to_thread(describe, segment, self.recorder.recorder_id)
        if side is None:
            await asyncio.to_thread(segment.path.unlink, missing_ok=True)
            log.warning("camera %s: segment %s was empty; removed", segment.camera.id, segment.path.name)
            return
        await asyncio.to_thread(write_json, sidecar, side)
        log.info("camera %s of gate %s: segment %s finished (%s, %sx%s, %s bytes)", segment.camera.id,
                 segment.camera.gate_id, segment.path.name, side["codec"], side["width"], side["height"],
                 side["bytes"])
        await self.recorder.add_finished(sidecar, side)


def camera_dir(recorder: Any, camera_id: str) -> Path:
    """Where a camera's ffmpeg writes its segments: inside the recorder's own (locked) spool directory."""
    from gate_service.video.storage import key_part

    return Path(recorder.own_dir) / "cameras" / key_part(camera_id)
