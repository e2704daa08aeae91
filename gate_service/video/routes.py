"""HTTP endpoints: a passage's clip, the segment index, legal holds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import tempfile
import uuid
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import cv2
from aiohttp import web

from gate_service import keys
from gate_service.auth import audit, enterprise_scope
from gate_service.errors import ApiError, not_found
from gate_service.policy.model import SHANGHAI
from gate_service.validation import parse_date, parse_datetime
from gate_service.video.recorder import FOURCC
from gate_service.web import Api, json_response

log = logging.getLogger(__name__)
api = Api()

MP4 = "video/mp4"
SEGMENT_COLUMNS = """s.id, s.gate_id, s.started_at, s.ended_at, s.status, s.fps, s.width, s.height, s.frames,
    s.bytes, s.sha256, s.note, s.legal_hold, s.hold_reason, s.hold_case_ref, s.held_by, s.held_at, s.deleted_at,
    s.enterprise_id, s.camera_id, s.codec"""

HOLD = {
    "type": "object",
    "required": ["reason"],
    "additionalProperties": False,
    "properties": {
        "reason": {"type": "string", "minLength": 2, "maxLength": 500},
        "case_ref": {"type": "string", "minLength": 1, "maxLength": 100},
    },
}
RELEASE = {
    "type": "object",
    "required": ["reason"],
    "additionalProperties": False,
    "properties": {"reason": {"type": "string", "minLength": 2, "maxLength": 500}},
}
SECONDS = {"type": "string", "pattern": r"^[0-9]{1,3}$"}
CLIP_QUERY = {"before": SECONDS, "after": SECONDS, "whole": {"type": "string", "enum": ["true", "false"]}}
MAX_CLIP_SECONDS = 300


# A segment with what serving it needs: its storage key and its enterprise - the one that owned the gate when
# it was recorded (set by the database at insert), not the gate's owner today.
_SEGMENT_WITH_GATE = f"SELECT {SEGMENT_COLUMNS}, s.storage_key FROM video_segments s"


def _segment_json(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["available"] = out["deleted_at"] is None and out["status"] != "recording" and bool(out["bytes"])
    return out


async def _segment(request: web.Request, segment_id: int) -> dict[str, Any]:
    row = await request.app[keys.POOL].fetchrow(f"{_SEGMENT_WITH_GATE} WHERE s.id = $1", segment_id)
    if row is None:
        raise not_found("录像片段 video segment", str(segment_id))
    return dict(row)


async def _segment_covering(request: web.Request, gate_id: str, at: datetime) -> dict[str, Any] | None:
    """The gate's segment whose video covers ``at`` (for passages decided while their segment had no row yet).

    A segment lasts at most ``segment_seconds`` (it rolls on the clock), which bounds the index scan; a row
    that ended without a file (an open cut short by an outage) yields to one with video.
    """
    recorder = request.app.get(keys.VIDEO_RECORDER)
    length = float(getattr(recorder, "segment_seconds", 600.0))
    row = await request.app[keys.POOL].fetchrow(
        f"""{_SEGMENT_WITH_GATE}
            WHERE s.gate_id = $1 AND s.started_at <= $2 AND s.started_at > $2 - make_interval(secs => $3)
              AND $2 < coalesce(s.ended_at, s.started_at + make_interval(secs => $4))
            ORDER BY (s.bytes IS NOT NULL) DESC, s.started_at DESC LIMIT 1""",
        gate_id, at, max(length, 3600.0), length)
    return dict(row) if row is not None else None


def _check_enterprise(request: web.Request, enterprise_id: str | None) -> None:
    scope = enterprise_scope(request, None)
    if scope is not None and enterprise_id != scope:
        raise ApiError(403, "forbidden_enterprise", "企业只能查看本企业数据 / an enterprise sees only its own data")


def _check_available(request: web.Request, seg: dict[str, Any]) -> None:
    if seg["deleted_at"] is not None:
        raise ApiError(410, "video_expired",
                       f"录像已按保存期限删除({seg['deleted_at']:%Y-%m-%d})/ the video was deleted by retention",
                       segment_id=seg["id"])
    if seg["status"] == "recording":
        recorder = request.app.get(keys.VIDEO_RECORDER)
        length = getattr(recorder, "segment_seconds", 600.0)
        wait = seg["started_at"] + timedelta(seconds=length) - datetime.now(timezone.utc)
        retry = max(1, math.ceil(wait.total_seconds()) + 5)
        raise ApiError(409, "video_recording", "录像片段仍在录制,稍后再试 / the segment is still recording",
                       segment_id=seg["id"], retry_after=retry, headers={"Retry-After": str(retry)})
    if not seg["bytes"]:
        raise ApiError(404, "no_video", f"录像片段未能保存: {seg['note'] or ''} / nothing of this segment was saved",
                       segment_id=seg["id"])


async def _local_file(request: web.Request, seg: dict[str, Any]) -> Path:
    try:
        return await request.app[keys.MEDIA_STORE].local_path(seg["storage_key"])
    except FileNotFoundError:
        # The index says it exists: someone removed the file behind the service's back.
        log.error("video: segment %s file %s is missing from storage", seg["id"], seg["storage_key"])
        raise ApiError(404, "video_missing", "录像文件缺失 / the segment's file is missing from storage",
                       segment_id=seg["id"]) from None


def _video_headers(seg: dict[str, Any], filename: str) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Segment-Id": str(seg["id"]),
        "X-Segment-Started-At": seg["started_at"].isoformat(),
        "X-Segment-Sha256": seg["sha256"] or "",
        "X-Segment-Status": seg["status"],
    }


@api.route("GET", "/api/v1/passages/{passage_id}/clip", roles=("ecology", "admin", "enterprise"), tag="video",
           summary="The video of a passage: a cut around the moment (before/after seconds), or whole=true for "
                   "the whole segment", query=CLIP_QUERY, produces=(MP4,))
async def passage_clip(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["passage_id"]
    try:
        passage_id = uuid.UUID(raw)
    except ValueError:
        raise not_found("通行记录 passage", raw) from None
    pool = request.app[keys.POOL]
    passage = await pool.fetchrow(
        "SELECT gate_id, enterprise_id, at, video_segment_id, video_offset_ms, origin_site FROM passages WHERE id = $1 "
        "LIMIT 1", passage_id)
    if passage is None:
        raise not_found("通行记录 passage", raw)
    _check_enterprise(request, passage["enterprise_id"])
    if passage["origin_site"] is not None:  # uploaded by a site (联网): its segment ids are the site's, not ours
        from gate_service.link.clip_requests import passage_clip as uploaded_clip

        return await uploaded_clip(request, passage_id, passage)
    found_by = "segment_id"
    if passage["video_segment_id"] is not None:
        seg = await _segment(request, passage["video_segment_id"])
        offset = passage["video_offset_ms"] or 0
    else:
        # Decided while the gate's video was recorded provisionally (database down): the segment that covers
        # the gate at that moment, indexed afterwards.
        covering = await _segment_covering(request, passage["gate_id"], passage["at"])
        if covering is None:
            recorder = request.app.get(keys.VIDEO_RECORDER)
            until = recorder.unindexed_until(passage["gate_id"], passage["at"]) if recorder is not None else None
            if until is not None:
                retry = max(1, math.ceil((until - datetime.now(timezone.utc)).total_seconds()) + 5)
                raise ApiError(409, "video_recording",
                               "录像已在本地保存,尚未入库,稍后再试 / the video is saved locally and not indexed yet",
                               retry_after=retry, headers={"Retry-After": str(retry)})
            raise ApiError(404, "no_video", "该通行记录没有录像 / this passage has no video")
        seg, found_by = covering, "gate_time"
        offset = max(0, int((passage["at"] - seg["started_at"]) / timedelta(milliseconds=1)))
    _check_available(request, seg)
    await audit(pool, request, "video.clip", str(passage_id),
                {"segment_id": seg["id"], "offset_ms": offset, "found_by": found_by})
    path = await _local_file(request, seg)
    whole = request.query.get("whole") == "true" or seg["status"] != "closed"
    if whole:
        # An incomplete segment cannot be cut (no MP4 index); it is handed over as it is, as evidence.
        headers = _video_headers(seg, f"passage-{passage_id}-segment-{seg['id']}.mp4")
        headers["X-Clip-Offset-Ms"] = str(offset)
        headers["X-Segment-Found-By"] = found_by
        return web.FileResponse(path, headers={**headers, "Content-Type": MP4})
    before = min(int(request.query.get("before", "10")), MAX_CLIP_SECONDS) * 1000
    after = min(int(request.query.get("after", "20")), MAX_CLIP_SECONDS) * 1000
    # A camera's own stream is cut by stream copy (from the keyframe before), never re-encoded.
    cut = cut_copy if seg.get("codec") in STREAM_COPY_CODECS else cut_clip
    body, clip_start = await asyncio.to_thread(cut, path, max(0, offset - before), offset + after)
    if not body:
        raise ApiError(404, "no_video", "录像中没有该时段的画面 / the segment has no frames at that moment",
                       segment_id=seg["id"])
    headers = _video_headers(seg, f"passage-{passage_id}.mp4")
    headers["X-Clip-Offset-Ms"] = str(offset - clip_start)
    headers["X-Clip-Starts-At-Ms"] = str(clip_start)
    headers["X-Segment-Found-By"] = found_by
    return web.Response(body=body, content_type=MP4, headers=headers)


STREAM_COPY_CODECS = ("h264", "hevc")


def cut_copy(source: Path, start_ms: int, end_ms: int) -> tuple[bytes, int]:
    """Copy the packets from the keyframe at or before ``start_ms`` to ``end_ms``; (MP4 bytes, clip start ms)."""
    import shutil
    import subprocess

    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if ffmpeg is None or ffprobe is None:
        return cut_clip(source, start_ms, end_ms)
    probe = subprocess.run([ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
                            "-of", "csv=p=0", str(source)], capture_output=True, text=True, timeout=120, check=False)
    keys = []
    for line in probe.stdout.splitlines():
        pts, _, flags = line.partition(",")
        if "K" in flags:
            with contextlib.suppress(ValueError):
                keys.append(float(pts) * 1000)
    before = [k for k in keys if k <= start_ms]
    if not keys or (not before and min(keys) > end_ms):
        return b"", 0
    first = max(before) if before else min(keys)
    with tempfile.TemporaryDirectory(prefix="clip-") as tmp:
        out = Path(tmp) / "clip.mp4"
        done = subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-ss", f"{first / 1000:.3f}",
                               "-i", str(source), "-t", f"{max(0.04, (end_ms - first) / 1000):.3f}", "-map", "0:v:0",
                               "-c", "copy", "-movflags", "+faststart", str(out)],
                              capture_output=True, timeout=120, check=False)
        if done.returncode != 0 or not out.exists():
            log.error("video: stream-copy cut of %s failed: %s", source.name, done.stderr[-300:])
            return b"", 0
        return out.read_bytes(), int(first)


def cut_clip(source: Path, start_ms: int, end_ms: int) -> tuple[bytes, int]:
    """Re-encode the frames between the two offsets; return (MP4 bytes, where the clip starts in ms)."""
    cap = cv2.VideoCapture(str(source))
    try:
        if not cap.isOpened():
            return b"", 0
        fps = cap.get(cv2.CAP_PROP_FPS) or 5.0
        first = int(start_ms * fps / 1000)
        last = max(first + 1, math.ceil(end_ms * fps / 1000))
        cap.set(cv2.CAP_PROP_POS_FRAMES, first)
        with tempfile.TemporaryDirectory(prefix="clip-") as tmp:
            out = Path(tmp) / "clip.mp4"
            writer = None
            frames = 0
            while first + frames < last:
                ok, frame = cap.read()
                if not ok:
                    break
                if writer is None:
                    height, width = frame.shape[:2]
                    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*FOURCC), fps, (width, height))
                writer.write(frame)
                frames += 1
            if writer is None:
                return b"", 0
            writer.release()
            return out.read_bytes(), int(first * 1000 / fps)
    finally:
        cap.release()


@api.route("GET", r"/api/v1/video/segments/{segment_id:[0-9]+}/video", roles=("ecology", "admin", "enterprise"),
           tag="video", summary="A whole video segment (MP4)", produces=(MP4,))
async def segment_video(request: web.Request) -> web.StreamResponse:
    seg = await _segment(request, int(request.match_info["segment_id"]))
    _check_enterprise(request, seg["enterprise_id"])
    _check_available(request, seg)
    await audit(request.app[keys.POOL], request, "video.download", str(seg["id"]), {})
    path = await _local_file(request, seg)
    headers = _video_headers(seg, f"gate-{seg['gate_id']}-segment-{seg['id']}.mp4")
    return web.FileResponse(path, headers={**headers, "Content-Type": MP4})


def _bound(request: web.Request, name: str, end: bool) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if len(raw) == 10:  # a local day: the whole day, Asia/Shanghai
        moment = datetime.combine(parse_date(raw, name), time.min, SHANGHAI)
        return moment + timedelta(days=1) if end else moment
    moment = parse_datetime(raw, name)
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)


@api.route("GET", "/api/v1/video/segments", roles=("ecology", "admin", "enterprise"), tag="video",
           summary="Video segments overlapping a period (from/to: ISO date-time or local day), by gate",
           query={"gate_id": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"},
                  "held": {"type": "string", "enum": ["true", "false"]},
                  "limit": {"type": "string", "pattern": r"^[0-9]{1,5}$"}})
async def list_segments(request: web.Request) -> web.Response:
    q = request.query
    scope = enterprise_scope(request, None)
    start, end = _bound(request, "from", False), _bound(request, "to", True)
    held = None if "held" not in q else q["held"] == "true"
    rows = await request.app[keys.POOL].fetch(
        f"""SELECT {SEGMENT_COLUMNS} FROM video_segments s
            WHERE ($1::text IS NULL OR s.gate_id = $1) AND ($2::text IS NULL OR s.enterprise_id = $2)
              AND ($3::timestamptz IS NULL OR coalesce(s.ended_at, 'infinity') >= $3)
              AND ($4::timestamptz IS NULL OR s.started_at < $4)
              AND ($5::boolean IS NULL OR s.legal_hold = $5)
            ORDER BY s.gate_id, s.started_at LIMIT $6""",
        q.get("gate_id"), scope, start, end, held, min(int(q.get("limit", "1000")), 10_000),
    )
    return json_response({"segments": [_segment_json(r) for r in rows], "count": len(rows)})


@api.route("POST", r"/api/v1/video/segments/{segment_id:[0-9]+}/hold", roles=("ecology", "admin"), body=HOLD,
           tag="video", summary="Put a segment under legal hold (kept past retention while a case is open)")
async def hold_segment(request: web.Request) -> web.Response:
    segment_id = int(request.match_info["segment_id"])
    body = request[keys.BODY]
    pool = request.app[keys.POOL]
    principal = request[keys.PRINCIPAL]
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow("SELECT deleted_at FROM video_segments WHERE id = $1 FOR UPDATE", segment_id)
        if current is None:
            raise not_found("录像片段 video segment", str(segment_id))
        if current["deleted_at"] is not None:
            raise ApiError(410, "video_expired", "录像已按保存期限删除 / the video was already deleted by retention",
                           segment_id=segment_id)
        row = await conn.fetchrow(
            f"""UPDATE video_segments s SET legal_hold = true, hold_reason = $2, hold_case_ref = $3, held_by = $4,
                       held_at = now() WHERE id = $1 RETURNING {SEGMENT_COLUMNS}""",
            segment_id, body["reason"], body.get("case_ref"), principal.actor,
        )
        await audit(conn, request, "video.hold", str(segment_id), body)
    return json_response(_segment_json(row))


@api.route("POST", r"/api/v1/video/segments/{segment_id:[0-9]+}/release", roles=("ecology", "admin"), body=RELEASE,
           tag="video", summary="Release a legal hold (the segment then follows normal retention)")
async def release_segment(request: web.Request) -> web.Response:
    segment_id = int(request.match_info["segment_id"])
    body = request[keys.BODY]
    pool = request.app[keys.POOL]
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"""UPDATE video_segments s SET legal_hold = false, hold_reason = NULL, hold_case_ref = NULL,
                       held_by = NULL, held_at = NULL WHERE id = $1 RETURNING {SEGMENT_COLUMNS}""",
            segment_id,
        )
        if row is None:
            raise not_found("录像片段 video segment", str(segment_id))
        await audit(conn, request, "video.release", str(segment_id), body)
    return json_response(_segment_json(row))
