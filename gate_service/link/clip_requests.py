"""Video requests at the platform: the bureau asks for a period of a gate's video held at the site that runs the
gate; the request travels down to the site, the site uploads the segments, and the request shows its state.

Who may do what: the ecology bureau and admins request and watch; an enterprise sees the requests about its own
sites and their video (it is its own video); the police read no video (their console is the blacklist), so
none of these endpoints admits them. A site's legal hold makes a request too (``source: site_hold``), so a
held segment is copied to the platform without anyone at the platform having to ask.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from gate_service import keys
from gate_service.auth import Principal, audit, enterprise_scope
from gate_service.errors import ApiError, not_found
from gate_service.validation import parse_datetime
from gate_service.web import Api, json_response

api = Api()
TAG = "link"
WATCH = ("ecology", "admin", "enterprise")
MAX_PERIOD = timedelta(hours=2)
MP4 = "video/mp4"

CREATE = {
    "type": "object", "required": ["reason"], "additionalProperties": False,
    "properties": {
        "gate_id": {"type": "string", "minLength": 1, "maxLength": 100},
        "from": {"type": "string", "maxLength": 40}, "to": {"type": "string", "maxLength": 40},
        "passage_id": {"type": "string", "maxLength": 40},
        "before": {"type": "integer", "minimum": 0, "maximum": 3600},
        "after": {"type": "integer", "minimum": 0, "maximum": 3600},
        "reason": {"type": "string", "minLength": 2, "maxLength": 500},
        "case_ref": {"type": "string", "minLength": 1, "maxLength": 100},
    },
}
_COLUMNS = """r.id, r.site_id, r.gate_id, r.from_at, r.to_at, r.source, r.reason, r.case_ref, r.passage_id,
    r.requested_by, r.requested_role, r.created_at, r.state, r.state_reason, r.segments, r.updated_at, r.finished_at"""
_WITH_OWNER = f"SELECT {_COLUMNS}, t.enterprise_id FROM link_video_requests r JOIN api_tokens t ON t.id = r.site_id"
STATE_ZH = {"pending": "等待站点上传", "uploading": "上传中", "done": "已完成", "failed": "失败",
            "gone": "站点录像已删除(保存期限)"}


def request_json(row: Any) -> dict[str, Any]:
    out = {k: row[k] for k in ("id", "site_id", "gate_id", "source", "reason", "case_ref", "requested_by",
                               "requested_role", "created_at", "state", "state_reason", "updated_at", "finished_at")}
    out.update({"from": row["from_at"], "to": row["to_at"], "state_zh": STATE_ZH[row["state"]],
                "passage_id": str(row["passage_id"]) if row["passage_id"] else None,
                "reported": row["segments"]})
    return out


async def site_for_gate(conn: Any, gate_id: str) -> int | None:
    """The site that runs a gate: the one uploading its chain, else a checkpoint site listed for it."""
    site = await conn.fetchval("SELECT site_id FROM link_gate_heads WHERE gate_id = $1", gate_id)
    if site is None:
        site = await conn.fetchval("SELECT site_id FROM link_site_gates WHERE gate_id = $1 ORDER BY site_id LIMIT 1",
                                   gate_id)
    return site


async def hold_request(conn: asyncpg.Connection, site: Principal, segment: dict[str, Any]) -> None:
    """A segment held at the site: one request for its period, made once however often the hold is resent."""
    start = datetime.fromisoformat(segment["started_at"])
    end = datetime.fromisoformat(segment["ended_at"]) if segment.get("ended_at") else start + timedelta(seconds=1)
    who = segment.get("held_by") or "站点"
    await conn.execute(
        """INSERT INTO link_video_requests (site_id, gate_id, from_at, to_at, source, reason, requested_by,
                                            requested_role, token_id)
           VALUES ($1, $2, $3, $4, 'site_hold', $5, $6, 'site', $1)
           ON CONFLICT (site_id, gate_id, from_at, to_at) WHERE source = 'site_hold' DO UPDATE
               SET state = 'pending', state_reason = NULL, segments = NULL, finished_at = NULL, updated_at = now(),
                   reason = EXCLUDED.reason, requested_by = EXCLUDED.requested_by
               -- Held again after the platform's copy expired by retention: asked for again.
               WHERE link_video_requests.state NOT IN ('pending', 'uploading')
                 AND EXISTS (SELECT 1 FROM link_video_index i WHERE i.site_id = $1 AND i.segment_id = $7
                             AND i.storage_key IS NULL AND i.deleted_at IS NOT NULL)""",
        site.token_id, segment["gate_id"], start, max(end, start + timedelta(seconds=1)),
        f"站点法律保全 / legal hold at the site: {segment.get('hold_reason') or ''}".strip(), f"{who} @站点{site.token_id}",
        int(segment["id"]))


async def open_requests(conn: Any, site_id: int) -> list[dict[str, Any]]:
    """What the downlink tells one site: its requests still waiting for video."""
    rows = await conn.fetch(
        """SELECT id, gate_id, from_at, to_at, state FROM link_video_requests
           WHERE site_id = $1 AND state IN ('pending', 'uploading') ORDER BY id LIMIT 200""", site_id)
    return [{"id": r["id"], "gate_id": r["gate_id"], "from": r["from_at"].isoformat(), "to": r["to_at"].isoformat(),
             "state": r["state"]} for r in rows]


def _period(body: dict[str, Any], at: datetime | None) -> tuple[datetime, datetime]:
    if at is not None:
        start = at - timedelta(seconds=body.get("before", 30))
        end = at + timedelta(seconds=body.get("after", 60))
    else:
        if "from" not in body or "to" not in body:
            raise ApiError(422, "invalid_period", "需要 from 与 to,或 passage_id / from and to, or a passage_id",
                           field="from")
        start, end = parse_datetime(body["from"], "from"), parse_datetime(body["to"], "to")
        if start.tzinfo is None or end.tzinfo is None:
            raise ApiError(422, "invalid_period", "时间需带时区 / times need an offset", field="from")
    if end <= start or end - start > MAX_PERIOD:
        raise ApiError(422, "invalid_period", "时段须大于 0 且不超过 2 小时 / the period must be positive and at most "
                       "2 hours", field="to")
    return start, end


@api.route("POST", "/api/v1/video-requests", roles=("ecology", "admin"), body=CREATE, tag=TAG, status=201,
           summary="Ask the site that runs a gate to upload a period of its video (gate_id + from/to, or a "
                   "passage_id with before/after seconds)")
async def create_request(request: web.Request) -> web.Response:
    body = request[keys.BODY]
    principal: Principal = request[keys.PRINCIPAL]
    pool = request.app[keys.POOL]
    passage_id, at, gate_id = None, None, body.get("gate_id")
    if body.get("passage_id"):
        try:
            passage_id = uuid.UUID(body["passage_id"])
        except ValueError:
            raise not_found("通行记录 passage", body["passage_id"]) from None
        passage = await pool.fetchrow("SELECT gate_id, at FROM passages WHERE id = $1 LIMIT 1", passage_id)
        if passage is None:
            raise not_found("通行记录 passage", body["passage_id"])
        gate_id, at = passage["gate_id"], passage["at"]
    if not gate_id:
        raise ApiError(422, "invalid_period", "需要 gate_id 或 passage_id / gate_id or passage_id is required",
                       field="gate_id")
    start, end = _period(body, at)
    async with pool.acquire() as conn, conn.transaction():
        site_id = await site_for_gate(conn, gate_id)
        if site_id is None:
            raise ApiError(404, "gate_not_linked", f"门岗 {gate_id} 不属于任何联网站点 / no site runs gate {gate_id}",
                           field="gate_id")
        row = await conn.fetchrow(
            f"""INSERT INTO link_video_requests (site_id, gate_id, from_at, to_at, source, reason, case_ref, passage_id,
                                                 requested_by, requested_role, token_id)
                VALUES ($1, $2, $3, $4, 'request', $5, $6, $7, $8, $9, $10) RETURNING {_COLUMNS.replace('r.', '')}""",
            site_id, gate_id, start, end, body["reason"], body.get("case_ref"), passage_id, principal.actor,
            principal.role, principal.token_id)
        await audit(conn, request, "video.request", str(row["id"]),
                    {"gate_id": gate_id, "from": start.isoformat(), "to": end.isoformat(), "reason": body["reason"]})
    return json_response(await _detail(request, row), status=201)


async def _visible(request: web.Request, request_id: int) -> Any:
    row = await request.app[keys.POOL].fetchrow(f"{_WITH_OWNER} WHERE r.id = $1", request_id)
    if row is None:
        raise not_found("调取请求 video request", str(request_id))
    scope = enterprise_scope(request, None)
    if scope is not None and row["enterprise_id"] != scope:
        raise not_found("调取请求 video request", str(request_id))  # another enterprise's: not even its existence
    return row


def _progress(settings: Any, site_id: int, segment_id: int) -> int:
    from gate_service.link.clip_upload import staging

    try:
        return staging(settings, site_id, segment_id).stat().st_size
    except FileNotFoundError:
        return 0


async def _detail(request: web.Request, row: Any) -> dict[str, Any]:
    segs = await request.app[keys.POOL].fetch(
        """SELECT segment_id, started_at, ended_at, bytes, sha256, held, storage_key IS NOT NULL AS stored, stored_at,
                  gone_at, gone_reason, deleted_at, platform_hold, platform_hold_reason FROM link_video_index
           WHERE site_id = $1 AND gate_id = $2 AND started_at < $4 AND coalesce(ended_at, 'infinity') > $3
           ORDER BY started_at""", row["site_id"], row["gate_id"], row["from_at"], row["to_at"])
    settings = request.app[keys.SETTINGS]
    out = request_json(row)
    out["segments"] = []
    for s in segs:
        received = s["bytes"] if s["stored"] else await asyncio.to_thread(_progress, settings, row["site_id"],
                                                                         s["segment_id"])
        state = ("stored" if s["stored"] else "expired" if s["deleted_at"] else "gone" if s["gone_at"]
                 else "uploading" if received else "pending")
        out["segments"].append({
            **{k: s[k] for k in ("segment_id", "started_at", "ended_at", "bytes", "sha256", "held", "stored_at",
                                 "gone_at", "gone_reason", "deleted_at", "platform_hold", "platform_hold_reason")},
            "state": state, "received": received,
            "video": f"/api/v1/video-requests/{row['id']}/segments/{s['segment_id']}/video" if s["stored"] else None})
    return out


@api.route("GET", "/api/v1/video-requests", roles=WATCH, tag=TAG,
           query={"state": {"type": "string", "enum": list(STATE_ZH)}, "gate_id": {"type": "string"},
                  "site_id": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                  "limit": {"type": "string", "pattern": "^[0-9]{1,4}$"}},
           summary="Video requests, newest first (an enterprise sees those about its own sites)")
async def list_requests(request: web.Request) -> web.Response:
    q = request.query
    scope = enterprise_scope(request, None)
    rows = await request.app[keys.POOL].fetch(
        f"""{_WITH_OWNER} WHERE ($1::text IS NULL OR t.enterprise_id = $1) AND ($2::text IS NULL OR r.state = $2)
            AND ($3::text IS NULL OR r.gate_id = $3) AND ($4::bigint IS NULL OR r.site_id = $4)
            ORDER BY r.id DESC LIMIT $5""",
        scope, q.get("state"), q.get("gate_id"), int(q["site_id"]) if "site_id" in q else None,
        min(int(q.get("limit", "200")), 1000))
    return json_response({"requests": [request_json(r) for r in rows], "count": len(rows)})


@api.route("GET", r"/api/v1/video-requests/{request_id:[0-9]+}", roles=WATCH, tag=TAG,
           summary="One video request: its state and each segment's (pending, uploading with bytes received, "
                   "stored, gone)")
async def get_request(request: web.Request) -> web.Response:
    row = await _visible(request, int(request.match_info["request_id"]))
    return json_response(await _detail(request, row))


@api.route("GET", r"/api/v1/video-requests/{request_id:[0-9]+}/segments/{segment_id:[0-9]+}/video",
           roles=WATCH, tag=TAG, produces=(MP4,), summary="A segment a site uploaded for this request (MP4)")
async def request_video(request: web.Request) -> web.StreamResponse:
    row = await _visible(request, int(request.match_info["request_id"]))
    segment_id = int(request.match_info["segment_id"])
    seg = await request.app[keys.POOL].fetchrow(
        """SELECT * FROM link_video_index WHERE site_id = $1 AND segment_id = $2 AND gate_id = $3
           AND started_at < $5 AND coalesce(ended_at, 'infinity') > $4""",
        row["site_id"], segment_id, row["gate_id"], row["from_at"], row["to_at"])
    if seg is None:
        raise not_found("录像片段 video segment", str(segment_id))
    if seg["storage_key"] is None and seg["deleted_at"] is not None:
        raise expired_here(seg)
    if seg["storage_key"] is None:
        raise ApiError(409, "video_not_uploaded", "该片段尚未上传到平台 / the segment is not at the platform yet",
                       segment_id=segment_id, state=row["state"])
    await audit(request.app[keys.POOL], request, "video.download", f"site{row['site_id']}/{segment_id}",
                {"request_id": row["id"]})
    return await serve(request, seg, f"site{row['site_id']}-gate-{row['gate_id']}-segment-{segment_id}.mp4")


async def serve(request: web.Request, seg: Any, filename: str) -> web.StreamResponse:
    try:
        path: Path = await request.app[keys.MEDIA_STORE].local_path(seg["storage_key"])
    except FileNotFoundError:
        raise ApiError(404, "video_missing", "录像文件缺失 / the segment's file is missing from storage") from None
    return web.FileResponse(path, headers={
        "Content-Type": MP4, "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Segment-Id": str(seg["segment_id"]), "X-Segment-Started-At": seg["started_at"].isoformat(),
        "X-Segment-Sha256": seg["sha256"] or "", "X-Origin-Site": str(seg["site_id"])})


async def uploaded_segment(pool: Any, passage: Any) -> dict[str, Any] | None:
    """For a passage uploaded from a site: the site's segment covering it, as the platform knows it (its
    video_segment_id is the site's id, which means nothing among the platform's own segments)."""
    row = None
    if passage["video_segment_id"] is not None:
        row = await pool.fetchrow("SELECT * FROM link_video_index WHERE site_id = $1 AND segment_id = $2",
                                  passage["origin_site"], passage["video_segment_id"])
    if row is None:
        row = await pool.fetchrow(
            """SELECT * FROM link_video_index WHERE site_id = $1 AND gate_id = $2 AND started_at <= $3
               AND coalesce(ended_at, 'infinity') > $3 ORDER BY started_at DESC LIMIT 1""",
            passage["origin_site"], passage["gate_id"], passage["at"])
    return dict(row) if row is not None else None


def expired_here(seg: Any) -> ApiError:
    return ApiError(410, "video_expired", f"平台保存的副本已于 {seg['deleted_at']:%Y-%m-%d} 按保存期限删除 / the "
                    "platform's copy was deleted by retention", segment_id=seg["segment_id"])


def not_uploaded(seg: dict[str, Any] | None) -> ApiError:
    if seg is not None and seg.get("deleted_at"):
        return expired_here(seg)
    if seg is not None and seg.get("gone_at"):
        return ApiError(410, "video_expired", "站点已按保存期限删除该录像 / the site no longer holds this video",
                        segment_id=seg["segment_id"])
    return ApiError(404, "video_at_site", "录像保存在站点,尚未上传到平台:请发起调取请求(POST /api/v1/video-requests)"
                    " / the video is at the site: request it", segment_id=seg["segment_id"] if seg else None)



async def passage_clip(request: web.Request, passage_id: uuid.UUID, passage: Any) -> web.StreamResponse:
    """GET /api/v1/passages/{id}/clip at the platform, for a passage a site uploaded: from the copy the site
    uploaded on request, cut like a local clip; 404 video_at_site (with what to do) while it is not here."""
    from gate_service.video.routes import MAX_CLIP_SECONDS, cut_clip

    seg = await uploaded_segment(request.app[keys.POOL], passage)
    if seg is None or seg["storage_key"] is None:
        raise not_uploaded(seg)
    offset = max(0, int((passage["at"] - seg["started_at"]) / timedelta(milliseconds=1)))
    await audit(request.app[keys.POOL], request, "video.clip", str(passage_id),
                {"site_id": seg["site_id"], "segment_id": seg["segment_id"], "offset_ms": offset})
    if request.query.get("whole") == "true":
        response = await serve(request, seg, f"passage-{passage_id}-site-segment-{seg['segment_id']}.mp4")
        response.headers["X-Clip-Offset-Ms"] = str(offset)
        return response
    try:
        path = await request.app[keys.MEDIA_STORE].local_path(seg["storage_key"])
    except FileNotFoundError:
        raise ApiError(404, "video_missing", "录像文件缺失 / the segment's file is missing from storage") from None
    before = min(int(request.query.get("before", "10")), MAX_CLIP_SECONDS) * 1000
    after = min(int(request.query.get("after", "20")), MAX_CLIP_SECONDS) * 1000
    body, clip_start = await asyncio.to_thread(cut_clip, path, max(0, offset - before), offset + after)
    if not body:
        raise ApiError(404, "no_video", "录像中没有该时段的画面 / the segment has no frames at that moment",
                       segment_id=seg["segment_id"])
    return web.Response(body=body, content_type=MP4, headers={
        "Content-Disposition": f'attachment; filename="passage-{passage_id}.mp4"', "X-Origin-Site": str(seg["site_id"]),
        "X-Segment-Id": str(seg["segment_id"]), "X-Segment-Sha256": seg["sha256"] or "",
        "X-Clip-Offset-Ms": str(offset - clip_start), "X-Clip-Starts-At-Ms": str(clip_start)})
