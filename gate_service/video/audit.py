"""Video self-audit (视频核查): every vehicle the recorded video shows at a gate, checked against the ledger.

What inspectors do by hand (三(六)27/28; HJ 1321: every vehicle in a 5–10 minute clip of an alert day must be in
the ledger): the plate reader runs over the gate's recorded segments for a period, a few frames a second,
motion-gated like the live gate; the tracker turns reads into vehicles (one per stop); each vehicle is matched
to a ledger row of the gate within a tolerance (same plate, or one character off — a misread on either side);
a vehicle in the video with no row is the finding. Lane activity with no plate read at all is listed as
"unread" and matched to any unclaimed ledger row near it.

Decoding and reading are CPU work: they run in one thread of their own (an audit takes at most one core, the
live gates keep the rest), on the service's shared plate reader.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import cv2
import numpy as np

from gate_service.gates.tracker import Tracker, TrackerConfig

log = logging.getLogger(__name__)

SAMPLE_FPS = 2.0
TOLERANCE_SECONDS = 120.0
MOTION = 3.0  # mean grey-level change on a 64x36 thumbnail, as the live gate's motion gate
UNREAD_MIN_SECONDS = 1.0
_AUDIT_THREAD = ThreadPoolExecutor(1, thread_name_prefix="video-audit")


@dataclass
class Sighting:
    at: datetime
    plate: str | None  # None: activity in the lane without a plate read ("unread")
    confidence: float
    thumbnail: bytes  # JPEG, 240 px wide
    segment_id: int
    offset_ms: int
    passage_id: str | None = None
    ledger_plate: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "plate": self.plate or "unread", "read": self.plate is not None,
                "confidence": round(self.confidence, 3), "segment_id": self.segment_id,
                "offset_ms": self.offset_ms, "in_ledger": self.passage_id is not None,
                "passage_id": self.passage_id, "ledger_plate": self.ledger_plate,
                "thumbnail": "data:image/jpeg;base64," + base64.b64encode(self.thumbnail).decode("ascii")}


@dataclass
class _Scan:
    tracker: Tracker
    sightings: list[Sighting] = field(default_factory=list)
    active_since: datetime | None = None
    active_last: datetime | None = None
    active_thumb: bytes | None = None
    active_read: bool = False
    previous: np.ndarray | None = None


def _thumb(image: np.ndarray) -> np.ndarray:
    small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.int16)


def _jpeg(image: np.ndarray, width: int = 240) -> bytes:
    height = max(1, int(image.shape[0] * width / image.shape[1]))
    ok, buf = cv2.imencode(".jpg", cv2.resize(image, (width, height)), [cv2.IMWRITE_JPEG_QUALITY, 75])
    return buf.tobytes() if ok else b""


def scan_segment(path: Path, started_at: datetime, segment_id: int, reader: Any, *, sample_fps: float = SAMPLE_FPS,
                 start: datetime | None = None, end: datetime | None = None, scan: _Scan | None = None,
                 tracker_config: TrackerConfig | None = None) -> _Scan:
    """Read one segment's frames (blocking). ``scan`` carries a vehicle across segment boundaries."""
    scan = scan or _Scan(Tracker(tracker_config))
    cap = cv2.VideoCapture(str(path))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        step = max(1, round(fps / sample_fps))
        index = -1
        while True:
            if not cap.grab():
                break
            index += 1
            if index % step:
                continue
            ok, image = cap.retrieve()
            if not ok:
                break
            at = started_at + timedelta(seconds=index / fps)
            if (start is not None and at < start) or (end is not None and at >= end):
                continue
            _frame(scan, image, at, segment_id, int(index * 1000 / fps), reader)
    finally:
        cap.release()
    return scan


def _frame(scan: _Scan, image: np.ndarray, at: datetime, segment_id: int, offset_ms: int, reader: Any) -> None:
    thumb = _thumb(image)
    moved = scan.previous is None or float(np.mean(np.abs(thumb - scan.previous))) >= MOTION
    scan.previous = thumb
    settled = []
    if moved or scan.tracker.current_plate is not None:
        read = reader.read(image, quick=scan.tracker.current_settled)
        if read.plate:
            settled = scan.tracker.feed(read, at, {"jpeg": _jpeg(image), "segment_id": segment_id,
                                                    "offset_ms": offset_ms})
            scan.active_read = True
        else:
            settled = scan.tracker.tick(at)
    else:
        settled = scan.tracker.tick(at)
    for s in settled:
        payload = s.payload or {}
        scan.sightings.append(Sighting(s.first_at, s.plate, s.confidence, payload.get("jpeg", b""),
                                       payload.get("segment_id", segment_id), payload.get("offset_ms", offset_ms)))
    # Lane activity: motion episodes; one without any plate read is an "unread" vehicle.
    if moved:
        if scan.active_since is None:
            scan.active_since, scan.active_read = at, False
        scan.active_last = at
        if scan.active_thumb is None or not scan.active_read:
            scan.active_thumb = _jpeg(image)
    elif scan.active_since is not None and scan.active_last is not None and \
            (at - scan.active_last).total_seconds() > scan.tracker.config.leave_after:
        _end_activity(scan, segment_id, offset_ms)


def _end_activity(scan: _Scan, segment_id: int, offset_ms: int) -> None:
    if scan.active_since is not None and scan.active_last is not None and not scan.active_read and \
            (scan.active_last - scan.active_since).total_seconds() >= UNREAD_MIN_SECONDS:
        scan.sightings.append(Sighting(scan.active_since, None, 0.0, scan.active_thumb or b"", segment_id, offset_ms))
    scan.active_since = scan.active_last = scan.active_thumb = None
    scan.active_read = False


def finish(scan: _Scan, segment_id: int) -> list[Sighting]:
    for s in scan.tracker.tick(datetime.max.replace(tzinfo=timezone.utc)):
        payload = s.payload or {}
        scan.sightings.append(Sighting(s.first_at, s.plate, s.confidence, payload.get("jpeg", b""),
                                       payload.get("segment_id", segment_id), payload.get("offset_ms", 0)))
    _end_activity(scan, segment_id, 0)
    return sorted(scan.sightings, key=lambda v: v.at)


def _near(a: str, b: str) -> bool:
    """Same plate, or one character different (a misread by the camera, the guard or the audit)."""
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) <= 1


def match(sightings: list[Sighting], passages: list[dict[str, Any]], tolerance: timedelta) -> list[Sighting]:
    """Pure: claim for each sighting the nearest unclaimed ledger row in time; plates first, unread after."""
    claimed: set[str] = set()
    for exact in (True, False):
        for s in sightings:
            if s.plate is None or s.passage_id is not None:
                continue
            near = [p for p in passages if str(p["id"]) not in claimed and p.get("plate")
                    and (p["plate"] == s.plate if exact else _near(p["plate"], s.plate))
                    and abs(p["at"] - s.at) <= tolerance]
            if near:
                best = min(near, key=lambda p: abs(p["at"] - s.at))
                s.passage_id, s.ledger_plate = str(best["id"]), best["plate"]
                claimed.add(s.passage_id)
    for s in sightings:
        if s.plate is None:
            near = [p for p in passages if str(p["id"]) not in claimed and abs(p["at"] - s.at) <= tolerance]
            if near:
                best = min(near, key=lambda p: abs(p["at"] - s.at))
                s.passage_id, s.ledger_plate = str(best["id"]), best.get("plate")
                claimed.add(s.passage_id)
    return sightings


async def run_audit(pool: asyncpg.Pool, store: Any, reader: Any, gate_id: str, start: datetime, end: datetime, *,
                    tolerance: timedelta = timedelta(seconds=TOLERANCE_SECONDS),
                    sample_fps: float = SAMPLE_FPS) -> dict[str, Any]:
    segments = await pool.fetch(
        """SELECT id, started_at, ended_at, storage_key FROM video_segments
           WHERE gate_id = $1 AND deleted_at IS NULL AND status <> 'recording' AND bytes > 0
             AND started_at < $3 AND coalesce(ended_at, started_at) > $2
           ORDER BY started_at""", gate_id, start, end)
    loop = asyncio.get_running_loop()
    scan: _Scan | None = None
    seconds = 0.0
    last_id = 0
    for seg in segments:
        try:
            path = await store.local_path(seg["storage_key"])
        except FileNotFoundError:
            log.warning("video audit: segment %s of gate %s is missing from storage", seg["id"], gate_id)
            continue
        scan = await loop.run_in_executor(_AUDIT_THREAD, lambda p=path, s=seg, sc=scan: scan_segment(
            p, s["started_at"], s["id"], reader, sample_fps=sample_fps, start=start, end=end, scan=sc))
        covered_from, covered_to = max(start, seg["started_at"]), min(end, seg["ended_at"] or seg["started_at"])
        seconds += max(0.0, (covered_to - covered_from).total_seconds())
        last_id = seg["id"]
    sightings = finish(scan, last_id) if scan is not None else []
    passages = [dict(r) for r in await pool.fetch(
        """SELECT id, at, plate, decision FROM passages
           WHERE gate_id = $1 AND at >= $2 AND at < $3 AND overrides IS NULL ORDER BY at""",
        gate_id, start - tolerance, end + tolerance)]
    match(sightings, passages, tolerance)
    vehicles = [s.to_json() for s in sightings]
    return {
        "gate_id": gate_id, "from": start.isoformat(), "to": end.isoformat(),
        "tolerance_seconds": tolerance.total_seconds(), "segments": len(segments),
        "video_seconds": round(seconds, 1), "vehicles": vehicles,
        "findings": [v for v in vehicles if not v["in_ledger"]],
        "ledger_rows": len([p for p in passages if start <= p["at"] < end]),
    }


async def save(pool: asyncpg.Pool, result: dict[str, Any], requested_by: str, audit_id: int | None = None) -> int:
    summary = {k: v for k, v in result.items() if k not in ("vehicles", "findings")}
    if audit_id is None:
        return await pool.fetchval(
            """INSERT INTO video_audits (gate_id, period_from, period_to, status, requested_by)
               VALUES ($1, $2, $3, 'running', $4) RETURNING id""",
            result["gate_id"], datetime.fromisoformat(result["from"]), datetime.fromisoformat(result["to"]),
            requested_by)
    await pool.execute(
        """UPDATE video_audits SET status = $2, finished_at = now(), vehicles = $3, findings = $4, result = $5,
                  error = $6 WHERE id = $1""",
        audit_id, "failed" if result.get("error") else "done", len(result.get("vehicles", [])),
        len(result.get("findings", [])), {**summary, "vehicles": result.get("vehicles", [])}, result.get("error"))
    return audit_id
