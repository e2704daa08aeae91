"""HTTP endpoints of the video self-audit: start one for a gate and a period, read its result, list them."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from gate_service import keys
from gate_service.auth import audit
from gate_service.errors import ApiError, not_found
from gate_service.video import audit as video_audit
from gate_service.video import audit_job  # noqa: F401 - registers the nightly alert-day audit with the jobs
from gate_service.web import Api, json_response

log = logging.getLogger(__name__)
api = Api()
TAG = "video"
MAX_PERIOD = timedelta(hours=6)

AUDIT = {
    "type": "object",
    "required": ["gate_id", "from", "to"],
    "additionalProperties": False,
    "properties": {
        "gate_id": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "tolerance_seconds": {"type": "integer", "minimum": 5, "maximum": 1800},
    },
}
_TASKS: set[asyncio.Task[Any]] = set()


def _moment(body: dict[str, Any], name: str) -> datetime:
    try:
        value = datetime.fromisoformat(str(body[name]).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "invalid_datetime", f"时间格式无效 / not an ISO 8601 time: {body[name]}", field=name) from None
    if value.tzinfo is None:
        raise ApiError(422, "invalid_datetime", "时间须带时区 / the time needs an offset", field=name)
    return value


async def start_audit(app: web.Application, gate_id: str, start: datetime, end: datetime, requested_by: str,
                      tolerance: timedelta) -> int:
    """Record the audit as running and run it in the background; its row gets the result."""
    pool = app[keys.POOL]
    audit_id = await video_audit.save(pool, {"gate_id": gate_id, "from": start.isoformat(), "to": end.isoformat()},
                                      requested_by)

    async def work() -> None:
        try:
            reader = await app[keys.GATES].pool.reader()
            result = await video_audit.run_audit(pool, app[keys.MEDIA_STORE], reader, gate_id, start, end,
                                                 tolerance=tolerance)
        except Exception as exc:  # noqa: BLE001 - recorded on the audit's row, not lost in a log
            log.exception("video audit %d failed", audit_id)
            result = {"gate_id": gate_id, "from": start.isoformat(), "to": end.isoformat(),
                      "error": f"{type(exc).__name__}: {exc}"}
        await video_audit.save(pool, result, requested_by, audit_id)

    task = asyncio.create_task(work(), name=f"video-audit-{audit_id}")
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    return audit_id


@api.route("POST", "/api/v1/video/audits", roles=("ecology", "admin"), tag=TAG, body=AUDIT, status=202,
           summary="视频核查: run the plate reader over a gate's recorded video for a period (at most 6 h) and "
                   "match every vehicle seen against the ledger; answers the audit id at once")
async def post_audit(request: web.Request) -> web.Response:
    body = request[keys.BODY]
    start, end = _moment(body, "from"), _moment(body, "to")
    if end <= start:
        raise ApiError(422, "invalid_period", "结束时间须晚于开始时间 / 'to' must be after 'from'", field="to")
    if end - start > MAX_PERIOD:
        raise ApiError(422, "period_too_long", "单次核查最长 6 小时 / at most 6 hours per audit", field="to")
    if end > datetime.now(timezone.utc) + timedelta(minutes=1):
        raise ApiError(422, "time_in_future", "核查时段不能在未来 / the period cannot be in the future", field="to")
    pool = request.app[keys.POOL]
    if await pool.fetchval("SELECT 1 FROM gates WHERE id = $1", body["gate_id"]) is None:
        raise not_found("门岗 gate", body["gate_id"])
    principal = request[keys.PRINCIPAL]
    audit_id = await start_audit(request.app, body["gate_id"], start, end, principal.actor,
                                 timedelta(seconds=body.get("tolerance_seconds", video_audit.TOLERANCE_SECONDS)))
    await audit(pool, request, "video.audit", str(audit_id), {k: body[k] for k in ("gate_id", "from", "to")})
    return json_response({"id": audit_id, "status": "running"}, status=202)


def _row(row: Any, full: bool) -> dict[str, Any]:
    out = {k: row[k] for k in ("id", "gate_id", "period_from", "period_to", "status", "requested_by", "started_at",
                               "finished_at", "vehicles", "findings", "error")}
    if full:
        out["result"] = row["result"]
    return out


@api.route("GET", r"/api/v1/video/audits/{audit_id:[0-9]+}", roles=("ecology", "admin"), tag=TAG,
           summary="One video self-audit: every vehicle seen (time, plate or 'unread', thumbnail, ledger row)")
async def get_audit(request: web.Request) -> web.Response:
    row = await request.app[keys.POOL].fetchrow("SELECT * FROM video_audits WHERE id = $1",
                                                int(request.match_info["audit_id"]))
    if row is None:
        raise not_found("视频核查 video audit", request.match_info["audit_id"])
    return json_response(_row(row, True))


@api.route("GET", "/api/v1/video/audits", roles=("ecology", "admin"), tag=TAG,
           query={"gate_id": {"type": "string"}}, summary="Video self-audits, newest first (summaries)")
async def list_audits(request: web.Request) -> web.Response:
    rows = await request.app[keys.POOL].fetch(
        "SELECT * FROM video_audits WHERE ($1::text IS NULL OR gate_id = $1) ORDER BY started_at DESC LIMIT 200",
        request.query.get("gate_id"))
    return json_response({"audits": [_row(r, False) for r in rows]})
