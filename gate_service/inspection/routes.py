"""HTTP endpoints of the inspection workbench: alert-day comparison, anomaly list, audit packet (检查材料).

Roles: ecology and admin see every enterprise; an enterprise token only its own (403 for another's), and its
anomaly list holds only its own lines.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from gate_service import keys
from gate_service.auth import enterprise_scope
from gate_service.errors import ApiError, not_found
from gate_service.inspection import packet as packets
from gate_service.inspection import service, store
from gate_service.policy.model import SHANGHAI
from gate_service.validation import parse_date
from gate_service.web import Api, json_response

api = Api()
TAG = "inspection"

MAX_COMPARISON_DAYS = 31
MAX_PERIOD_DAYS = 92
_DAY = r"\d{4}-\d{2}-\d{2}"
_DAYS = re.compile(rf"^{_DAY}(,{_DAY}){{0,{MAX_COMPARISON_DAYS - 1}}}$")

COMPARISON_QUERY = {
    "enterprise_id": {"type": "string"},
    "alert_id": {"type": "string", "pattern": r"^[0-9]{1,12}$"},
    "days": {"type": "string", "pattern": _DAYS.pattern},
    "from": {"type": "string", "format": "date"},
    "to": {"type": "string", "format": "date"},
}
PERIOD_QUERY = {
    "enterprise_id": {"type": "string"},
    "from": {"type": "string", "format": "date"},
    "to": {"type": "string", "format": "date"},
}
PACKET_QUERY = {
    **PERIOD_QUERY,
    "n": {"type": "string", "pattern": r"^[0-9]{1,2}$"},
    "seed": {"type": "string", "pattern": r"^[0-9]{1,10}$"},
    "format": {"type": "string", "enum": ["json", "xlsx", "pdf"]},
}


def _today() -> date:
    return datetime.now(SHANGHAI).date()


def _period(request: web.Request, default_days: int) -> tuple[date, date]:
    q = request.query
    last = parse_date(q["to"], "to") if "to" in q else _today()
    first = parse_date(q["from"], "from") if "from" in q else last - timedelta(days=default_days - 1)
    if last < first:
        raise ApiError(422, "bad_period", "截止日期不能早于起始日期 / 'to' is before 'from'", field="to")
    if (last - first).days + 1 > MAX_PERIOD_DAYS:
        raise ApiError(422, "period_too_long", f"区间最长 {MAX_PERIOD_DAYS} 天 / at most {MAX_PERIOD_DAYS} days",
                       field="to")
    return first, last


async def _enterprise(request: web.Request, required: bool = True) -> dict[str, Any] | None:
    enterprise_id = enterprise_scope(request, request.query.get("enterprise_id") or None)
    if enterprise_id is None:
        if required:
            raise ApiError(422, "enterprise_required", "请指定企业 enterprise_id / enterprise_id is required",
                           field="enterprise_id")
        return None
    row = await store.enterprise(request.app[keys.READ_POOL], enterprise_id)
    if row is None:
        raise not_found("企业 enterprise", enterprise_id)
    return row


@api.route("GET", "/api/v1/inspection/comparison", roles=("ecology", "admin", "enterprise"), tag=TAG,
           query=COMPARISON_QUERY,
           summary="Alert-day comparison for one enterprise: trips in/out vs its ordinary-day baseline, heavy "
                   "国4-and-below trucks admitted during orange/red, overrides, silent gates (alert_id, days or "
                   "from/to = the orange/red days between)")
async def comparison(request: web.Request) -> web.Response:
    q = request.query
    firm = await _enterprise(request)
    assert firm is not None
    pool = request.app[keys.READ_POOL]
    alert = None
    if "alert_id" in q:
        alert, days = await service.days_of_alert(pool, int(q["alert_id"]), MAX_COMPARISON_DAYS)
        if alert is None:
            raise not_found("预警 alert", q["alert_id"])
    elif "days" in q:
        days = sorted({parse_date(x, "days") for x in q["days"].split(",")})
    else:
        first, last = _period(request, 31)
        days = await service.alert_days_between(pool, first, last)
    if len(days) > MAX_COMPARISON_DAYS:
        raise ApiError(422, "too_many_days", f"最多比较 {MAX_COMPARISON_DAYS} 天 / at most {MAX_COMPARISON_DAYS} days",
                       field="days")
    body = await service.comparison(pool, firm, days, datetime.now(timezone.utc))
    if alert is not None:
        body["alert"] = {"id": alert["id"], "level": alert["level"], "starts_at": alert["starts_at"].isoformat(),
                         "ends_at": alert["ends_at"].isoformat(), "note": alert.get("note"),
                         "cancelled": alert.get("cancelled_at") is not None}
    return json_response(body)


@api.route("GET", "/api/v1/inspection/anomalies", roles=("ecology", "admin", "enterprise"), tag=TAG,
           query=PERIOD_QUERY,
           summary="Anomaly list (执法检查): alert-day traffic drops without rail, clean-share jumps, silent gates, "
                   "ledger seq gaps; each line with links to its evidence (default: the last 31 days)")
async def anomalies(request: web.Request) -> web.Response:
    firm = await _enterprise(request, required=False)
    first, last = _period(request, 31)
    body = await service.anomalies(request.app[keys.READ_POOL], first, last, datetime.now(timezone.utc),
                                   firm["id"] if firm else None)
    return json_response(body)


@api.route("GET", "/api/v1/inspection/packet", roles=("ecology", "admin", "enterprise"), tag=TAG,
           query=PACKET_QUERY, produces=("application/json", packets.XLSX, "application/pdf"),
           summary="Audit packet (检查材料) for an enterprise and period: a seeded sample of n ledger records with "
                   "snapshot and plate crop, stages re-checked against the registry, the alert-day comparison, "
                   "overrides and denials, the sampled alert day's video segments (format=json|xlsx|pdf; the same "
                   "seed re-makes the same packet)")
async def packet(request: web.Request) -> web.StreamResponse:
    q = request.query
    firm = await _enterprise(request)
    assert firm is not None
    first, last = _period(request, 31)
    n = int(q.get("n", packets.DEFAULT_SAMPLE))
    if not packets.MIN_SAMPLE <= n <= packets.MAX_SAMPLE:
        raise ApiError(422, "bad_sample_size",
                       f"抽样条数应在 {packets.MIN_SAMPLE}–{packets.MAX_SAMPLE} 之间 / n must be "
                       f"{packets.MIN_SAMPLE}-{packets.MAX_SAMPLE}", field="n")
    seed = int(q["seed"]) if "seed" in q else packets.new_seed()
    fmt = q.get("format", "json")
    data = await packets.build(request.app[keys.READ_POOL], request.app[keys.MEDIA_STORE], firm, first, last,
                               n=n, seed=seed, now=datetime.now(timezone.utc))
    return await packets.respond(request, data, fmt)
