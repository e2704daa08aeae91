"""The platform's endpoints through which a site uploads video segments it was asked for (role ``site``).

A segment travels in chunks appended at an offset to a staging file under ``<data dir>/link/incoming`` — the
platform's disk, so an upload cut by a dead link or a restarted platform resumes at the byte where it stopped
(``GET`` says how far it got). The body is streamed to disk in small pieces: memory stays bounded whatever the
segment's size. When the last byte is in, the file is checked against the sha256 of the index row the site sent
when the segment closed (before anyone asked for it), then moved into the media store under a key the platform
makes. A segment that does not match its own index is refused and its requests fail with the reason: that is a
finding about the site's video, not a transfer error to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import web

from gate_service import keys
from gate_service.errors import ApiError
from gate_service.link import enrol
from gate_service.link.platform_routes import SITE, TAG
from gate_service.video.storage import media_key, sha256_file
from gate_service.web import Api, json_response

log = logging.getLogger(__name__)
api = Api()
MAX_CHUNK = 8 * 1024 * 1024
_PIECE = 256 * 1024

REPORT = {
    "type": "object", "required": ["segments"], "additionalProperties": False,
    "properties": {"segments": {"type": "array", "maxItems": 1000, "items": {
        "type": "object", "required": ["segment_id", "state"], "additionalProperties": False,
        "properties": {"segment_id": {"type": "integer", "minimum": 1},
                       "state": {"type": "string", "enum": ["stored", "gone", "failed"]},
                       "reason": {"type": "string", "maxLength": 500}}}}},
}


def staging(settings: Any, site_id: int, segment_id: int) -> Path:
    return Path(settings.data_dir) / "link" / "incoming" / str(site_id) / f"{segment_id}.part"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


async def _index_row(request: web.Request, segment_id: int) -> Any:
    site = request[keys.PRINCIPAL]
    pool = request.app[keys.POOL]
    row = await pool.fetchrow("SELECT * FROM link_video_index WHERE site_id = $1 AND segment_id = $2",
                              site.token_id, segment_id)
    if row is None:
        raise ApiError(404, "unknown_segment", "平台没有该录像片段的索引(请先上传索引)/ the platform has no index row "
                       "of this segment (send it in the records stream first)", field="segment_id")
    await enrol.may_upload(pool, site, row["gate_id"])
    return row


def _progress(row: Any, received: int) -> dict[str, Any]:
    stored = row["storage_key"] is not None
    return {"segment_id": row["segment_id"], "bytes": row["bytes"], "received": row["bytes"] if stored else received,
            "stored": stored, "sha256": row["sha256"]}


@api.route("GET", r"/api/v1/link/video/{segment_id:[0-9]+}", roles=SITE, tag=TAG,
           summary="How much of a video segment the platform has received (where an upload resumes)")
async def video_offset(request: web.Request) -> web.Response:
    row = await _index_row(request, int(request.match_info["segment_id"]))
    part = staging(request.app[keys.SETTINGS], row["site_id"], row["segment_id"])
    return json_response(_progress(row, await asyncio.to_thread(_size, part)))


@api.route("PUT", r"/api/v1/link/video/{segment_id:[0-9]+}", roles=SITE, tag=TAG,
           content_types=("application/octet-stream", "video/mp4"),
           query={"offset": {"type": "string", "pattern": "^[0-9]{1,15}$"},
                  "request_id": {"type": "string", "pattern": "^[0-9]{1,18}$"}},
           summary="One chunk of a requested video segment, appended at offset (resumable; sha256-checked when "
                   "complete)")
async def put_chunk(request: web.Request) -> web.Response:
    segment_id = int(request.match_info["segment_id"])
    row = await _index_row(request, segment_id)
    if row["storage_key"] is not None:
        return json_response(_progress(row, row["bytes"]))
    if not row["sha256"] or not row["bytes"]:
        raise ApiError(409, "segment_not_closed", "该片段的索引没有大小或 sha256 / the segment's index has no size or "
                       "sha256 yet", field="segment_id")
    offset = int(request.query.get("offset", "0"))
    request_id = int(request.query["request_id"]) if "request_id" in request.query else None
    part = staging(request.app[keys.SETTINGS], row["site_id"], segment_id)
    fh = await asyncio.to_thread(_open_locked, part)
    try:
        received = os.fstat(fh.fileno()).st_size
        if offset != received:
            raise ApiError(409, "offset_mismatch", f"平台已收到 {received} 字节 / the platform holds {received} bytes",
                           field="offset", received=received)
        received = await _append(request, fh, part, received, row["bytes"])
        if request_id is not None:
            await request.app[keys.POOL].execute(
                """UPDATE link_video_requests SET state = 'uploading', updated_at = now()
                   WHERE id = $1 AND site_id = $2 AND state = 'pending'""", request_id, row["site_id"])
        if received < row["bytes"]:
            return json_response(_progress(row, received))
        return await _complete(request, row, part)
    finally:
        await asyncio.to_thread(fh.close)  # and with it the lock


def _open_locked(part: Path) -> BinaryIO:
    """The staging file, open for appending and locked (flock: also against another worker process on this
    disk). A second upload of the same segment at once is refused rather than interleaved."""
    part.parent.mkdir(parents=True, exist_ok=True)
    fh = open(part, "ab")  # noqa: SIM115 - closed by the caller, which holds the lock until then
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise ApiError(409, "upload_in_progress", "该片段正在上传 / this segment is being uploaded right now",
                       field="segment_id") from None
    return fh


async def _append(request: web.Request, fh: BinaryIO, part: Path, received: int, total: int) -> int:
    """Stream the body onto the staging file; the bytes that arrived stay, even if the body is cut short."""
    took = 0
    try:
        async for piece in request.content.iter_chunked(_PIECE):
            took += len(piece)
            if took > MAX_CHUNK or received + took > total:
                raise ApiError(413, "chunk_too_large", f"分块不能超过 {MAX_CHUNK // 1048576} MB,也不能超过片段大小 / "
                               "a chunk is at most 8 MB and never past the segment's size")
            await asyncio.to_thread(fh.write, piece)
    finally:
        await asyncio.to_thread(fh.flush)
        if took and received + took > total:
            # Never keep bytes past the segment's end: cut back to what was there before this chunk.
            await asyncio.to_thread(fh.truncate, received)
    return os.fstat(fh.fileno()).st_size


async def _complete(request: web.Request, row: Any, part: Path) -> web.Response:
    pool = request.app[keys.POOL]
    size, digest = await asyncio.to_thread(sha256_file, part)
    if digest != row["sha256"]:
        await asyncio.to_thread(part.unlink, missing_ok=True)
        reason = (f"片段 {row['segment_id']} 的内容与站点在录制时上报的 sha256 不符 / segment {row['segment_id']} does not "
                  "match the sha256 the site reported when it was recorded")
        await pool.execute(
            """UPDATE link_video_requests SET state = 'failed', state_reason = $4, updated_at = now(), finished_at = now()
               WHERE site_id = $1 AND gate_id = $2 AND state IN ('pending', 'uploading')
                 AND from_at < coalesce($5::timestamptz, 'infinity'::timestamptz) AND to_at > $3""",
            row["site_id"], row["gate_id"], row["started_at"], reason, row["ended_at"])
        log.error("site %s segment %s: sha256 mismatch (%s, index says %s)", row["site_id"], row["segment_id"],
                  digest, row["sha256"])
        raise ApiError(422, "sha256_mismatch", reason, field="segment_id")
    key = media_key("video", row["gate_id"], row["started_at"], f"site{row['site_id']}-segment{row['segment_id']}.mp4")
    await request.app[keys.MEDIA_STORE].put_file(key, part, move=True)
    await pool.execute(
        """UPDATE link_video_index SET storage_key = $3, stored_at = now(), deleted_at = NULL WHERE site_id = $1 AND segment_id = $2""",
        row["site_id"], row["segment_id"], key)
    with contextlib.suppress(FileNotFoundError):
        await asyncio.to_thread(part.unlink)
    return json_response({"segment_id": row["segment_id"], "bytes": size, "received": size, "stored": True,
                          "sha256": digest})


@api.route("POST", r"/api/v1/link/video-requests/{request_id:[0-9]+}/report", roles=SITE, tag=TAG, body=REPORT,
           summary="The site's answer to a video request: each segment stored, gone (retention) or failed")
async def report(request: web.Request) -> web.Response:
    from gate_service.link.clip_requests import request_json

    site = request[keys.PRINCIPAL]
    request_id = int(request.match_info["request_id"])
    segments = request[keys.BODY]["segments"]
    pool = request.app[keys.POOL]
    async with pool.acquire() as conn, conn.transaction():
        req = await conn.fetchrow("SELECT * FROM link_video_requests WHERE id = $1 AND site_id = $2 FOR UPDATE",
                                  request_id, site.token_id)
        if req is None:
            raise ApiError(404, "not_found", "没有该调取请求 / no such request for this site", field="request_id")
        if req["state"] in ("pending", "uploading"):
            ids = [s["segment_id"] for s in segments]
            stored = {r["segment_id"] for r in await conn.fetch(
                """SELECT segment_id FROM link_video_index WHERE site_id = $1 AND segment_id = ANY($2::bigint[])
                   AND storage_key IS NOT NULL""", site.token_id, ids)}
            for s in segments:
                if s["state"] == "stored" and s["segment_id"] not in stored:
                    raise ApiError(409, "segment_not_stored", f"平台尚未收齐片段 {s['segment_id']} / segment "
                                   f"{s['segment_id']} is not complete at the platform", field="segments")
                if s["state"] == "gone":
                    await conn.execute(
                        """UPDATE link_video_index SET gone_at = coalesce(gone_at, now()), gone_reason = $3
                           WHERE site_id = $1 AND segment_id = $2""", site.token_id, s["segment_id"], s.get("reason"))
            state, reason = _outcome(segments)
            await conn.execute(
                """UPDATE link_video_requests SET state = $2, state_reason = $3, segments = $4, updated_at = now(),
                          finished_at = now() WHERE id = $1""", request_id, state, reason, segments)
        req = await conn.fetchrow("SELECT * FROM link_video_requests WHERE id = $1", request_id)
    return json_response(request_json(req))


def _outcome(segments: list[dict[str, Any]]) -> tuple[str, str | None]:
    if not segments:
        return "failed", "站点没有该时段的录像 / the site has no video of this period"
    failed = [s for s in segments if s["state"] == "failed"]
    if failed:
        return "failed", "; ".join(f"{s['segment_id']}: {s.get('reason') or '?'}" for s in failed)
    gone = [s for s in segments if s["state"] == "gone"]
    if gone:
        return "gone", ("站点已按保存期限删除部分录像 / the site no longer holds some of the segments: "
                        + "; ".join(f"{s['segment_id']}: {s.get('reason') or '?'}" for s in gone))
    return "done", None
