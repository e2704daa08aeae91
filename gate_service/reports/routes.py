"""HTTP endpoints: enterprises' monthly non-road volumes, and the clean-transport ratio reports (issue 7)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from aiohttp import web

from gate_service import keys
from gate_service.auth import audit, enterprise_scope
from gate_service.errors import ApiError, not_found
from gate_service.policy.model import SHANGHAI
from gate_service.registry import store as registry
from gate_service.reports import compute, service
from gate_service.reports import store as reports_store
from gate_service.reports.export import XLSX, export_reports
from gate_service.validation import parse_date, parse_datetime
from gate_service.web import Api, json_response

api = Api()

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# Ten years of roll-ups is still only ~3,650 rows per enterprise; the bound keeps a typo from asking for 1000.
MAX_DAYS = 3660

_TONNES = {"type": "number", "minimum": 0, "maximum": 1e9}
VOLUMES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "rail_tonnes": _TONNES,
        "waterway_tonnes": _TONNES,
        "pipeline_tonnes": _TONNES,
        "conveyor_tonnes": _TONNES,
        "note": {"type": "string", "maxLength": 500, "nullable": True},
    },
}


def _month(raw: str, field: str = "month") -> date:
    m = _MONTH.match(raw)
    if not m:
        raise ApiError(422, "bad_month", f"月份应为 YYYY-MM: {raw} / expected a month YYYY-MM", field=field)
    try:
        return date(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:  # year 0, month 13: the pattern alone cannot rule them out
        raise ApiError(422, "bad_month", f"月份无效: {raw} / no such month", field=field) from None


def _today() -> date:
    return datetime.now(SHANGHAI).date()


async def _enterprise_or_404(request: web.Request, enterprise_id: str) -> dict[str, Any]:
    row = await registry.get_enterprise(request.app[keys.POOL], enterprise_id)
    if row is None:
        raise not_found("企业 enterprise", enterprise_id)
    return row


def _volume_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {
        "enterprise_id": row["enterprise_id"],
        "month": row["month"].strftime("%Y-%m"),
        **{c: float(row[c]) for c in reports_store.VOLUME_COLUMNS},
        "note": row.get("note"),
        "reported_by": row["reported_by"],
        "reported_role": row["reported_role"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }
    out["total_tonnes"] = round(sum(out[c] for c in reports_store.VOLUME_COLUMNS), 1)
    return out


@api.route("PUT", "/api/v1/enterprises/{enterprise_id}/transport-volumes/{month}", roles=("enterprise", "admin"),
           body=VOLUMES, tag="reports",
           summary="Report one month's non-road tonnes (rail, waterway, pipeline, conveyor); missing modes are 0")
async def put_volumes(request: web.Request) -> web.Response:
    enterprise_id = enterprise_scope(request, request.match_info["enterprise_id"])
    assert enterprise_id is not None
    month = _month(request.match_info["month"])
    if month > _today().replace(day=1):
        raise ApiError(422, "future_month", "不能填报未来月份的运输量 / a month in the future cannot be reported",
                       field="month")
    await _enterprise_or_404(request, enterprise_id)
    body = request[keys.BODY]
    values = {c: compute.tonnes(body.get(c, 0)) for c in reports_store.VOLUME_COLUMNS}
    principal = request[keys.PRINCIPAL]
    async with request.app[keys.POOL].acquire() as conn, conn.transaction():
        row, previous = await reports_store.put_volumes(
            conn, enterprise_id, month, values, note=body.get("note"), actor=principal.actor,
            role=principal.role, token_id=principal.token_id)
        detail: dict[str, Any] = {"new": {c: str(v) for c, v in values.items()}}
        if previous is not None:
            detail["previous"] = {c: str(previous[c]) for c in reports_store.VOLUME_COLUMNS}
        await audit(conn, request, "transport_volumes.put", f"{enterprise_id}/{month:%Y-%m}", detail)
    return json_response({**_volume_json(row), "created": previous is None}, status=201 if previous is None else 200)


@api.route("GET", "/api/v1/enterprises/{enterprise_id}/transport-volumes", roles=("ecology", "admin", "enterprise"),
           tag="reports", summary="An enterprise's reported monthly non-road tonnes",
           query={"from": {"type": "string", "pattern": _MONTH.pattern},
                  "to": {"type": "string", "pattern": _MONTH.pattern}})
async def list_volumes(request: web.Request) -> web.Response:
    enterprise_id = enterprise_scope(request, request.match_info["enterprise_id"])
    assert enterprise_id is not None
    await _enterprise_or_404(request, enterprise_id)
    q = request.query
    rows = await reports_store.list_volumes(
        request.app[keys.POOL], enterprise_id,
        _month(q["from"], "from") if "from" in q else None, _month(q["to"], "to") if "to" in q else None)
    return json_response({"enterprise_id": enterprise_id, "volumes": [_volume_json(r) for r in rows]})


@api.route("GET", "/api/v1/enterprises/{enterprise_id}/transport-volumes/{month}",
           roles=("ecology", "admin", "enterprise"), tag="reports", summary="One month's reported non-road tonnes")
async def get_volumes(request: web.Request) -> web.Response:
    enterprise_id = enterprise_scope(request, request.match_info["enterprise_id"])
    assert enterprise_id is not None
    month = _month(request.match_info["month"])
    rows = await reports_store.list_volumes(request.app[keys.POOL], enterprise_id, month, month)
    if not rows:
        raise not_found("运输量填报 transport volumes", f"{enterprise_id}/{month:%Y-%m}")
    return json_response(_volume_json(rows[0]))


REPORT_QUERY = {
    "enterprise_id": {"type": "string"},
    "from": {"type": "string", "format": "date"},
    "to": {"type": "string", "format": "date"},
    "county": {"type": "string"},
    "zone_id": {"type": "string"},
    "zone": {"type": "string"},
    "industry": {"type": "string"},
    "met": {"type": "string", "enum": ["true", "false", "none"]},
    "sort": {"type": "string", "enum": list(compute.SORT_KEYS)},
    "order": {"type": "string", "enum": ["asc", "desc"]},
    "months": {"type": "string", "enum": ["true", "false"]},
    "as_of": {"type": "string"},
    "format": {"type": "string", "enum": ["json", "csv", "xlsx"]},
    "view": {"type": "string", "enum": ["summary", "months"]},
}


def _period(request: web.Request) -> tuple[date, date]:
    q = request.query
    today = _today()
    # Without dates: the calendar year so far and to come, which is how the plan's targets are set.
    first = parse_date(q["from"], "from") if "from" in q else date(today.year, 1, 1)
    last = parse_date(q["to"], "to") if "to" in q else date(today.year, 12, 31)
    if last < first:
        raise ApiError(422, "bad_period", "截止日期不能早于起始日期 / 'to' is before 'from'", field="to")
    if (last - first).days + 1 > MAX_DAYS:
        raise ApiError(422, "period_too_long", f"统计区间最长 {MAX_DAYS} 天 / at most {MAX_DAYS} days", field="to")
    return first, last


def _as_of(request: web.Request) -> datetime:
    raw = request.query.get("as_of")
    if not raw:
        return datetime.now(timezone.utc)
    if len(raw) == 10:  # a local day: as of the end of that day
        return datetime.combine(parse_date(raw, "as_of"), time.min, SHANGHAI) + timedelta(days=1)
    moment = parse_datetime(raw, "as_of")
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)


async def _count_releases(pool: Any, rows: list[dict[str, Any]], first: date, last: date,
                          enterprise_id: str | None = None) -> int:
    """人工放行 (gate_service.passages.overrides) per enterprise into each row; the total of those rows."""
    from gate_service.passages.overrides import release_counts

    counts = await release_counts(pool, first, last, enterprise_id)
    for row in rows:
        row["manual_releases"] = counts.get(row["enterprise_id"], 0)
    return sum(row["manual_releases"] for row in rows)


@api.route("GET", "/api/v1/reports/clean-transport", roles=("ecology", "admin", "enterprise"), tag="reports",
           query=REPORT_QUERY, produces=("application/json", "text/csv", XLSX),
           summary="Clean-transport ratios (trips, tonnes, target, months, projection) for one enterprise or all; "
                   "format=csv|xlsx exports")
async def clean_transport(request: web.Request) -> web.StreamResponse:
    q = request.query
    # An enterprise token gets its own report (403 for another's), never the city list.
    enterprise_id = enterprise_scope(request, q.get("enterprise_id") or None)
    first, last = _period(request)
    now = _as_of(request)
    fmt = q.get("format", "json")
    # The heaviest read the bureau makes: from the replica when one is configured.
    pool = request.app[keys.READ_POOL]
    target_for = request.app[keys.POLICIES].target_for
    if enterprise_id is not None:
        rows = await service.reports(pool, target_for, first, last, now=now, enterprise_id=enterprise_id)
        if not rows:
            raise not_found("企业 enterprise", enterprise_id)
        await _count_releases(pool, rows, first, last, enterprise_id)
        if fmt != "json":
            return await export_reports(request, rows, None, fmt, q.get("view", "summary"),
                                        f"clean-transport-{enterprise_id}-{first}-{last}",
                                        xlsx_max_rows=request.app[keys.SETTINGS].export_xlsx_max_rows)
        return json_response(rows[0])

    # Months only where they are shown: JSON with months=true, the CSV months view, XLSX (its 月度 sheet).
    with_months = {"json": q.get("months") == "true", "csv": q.get("view", "summary") == "months"}.get(fmt, True)
    rows = await service.reports(pool, target_for, first, last, now=now, county=q.get("county") or None,
                                 zone_id=q.get("zone_id") or q.get("zone") or None,
                                 industry=q.get("industry") or None, with_months=with_months)
    if "met" in q:
        wanted = {"true": True, "false": False, "none": None}[q["met"]]
        rows = [r for r in rows if r["met"] is wanted]
    # Default: the lowest share first — the bureau's question is who is behind.
    rows = compute.sort_rows(rows, q.get("sort", "ratio"), q.get("order", "asc") == "desc")
    totals = compute.city_totals(rows, first, last)
    totals["manual_releases"] = await _count_releases(pool, rows, first, last)
    if fmt != "json":
        return await export_reports(request, rows, totals, fmt, q.get("view", "summary"),
                                    f"clean-transport-{first}-{last}",
                                    xlsx_max_rows=request.app[keys.SETTINGS].export_xlsx_max_rows)
    if q.get("months") != "true":
        rows = [{k: v for k, v in r.items() if k != "months"} for r in rows]
    return json_response({"from": first.isoformat(), "to": last.isoformat(), "count": len(rows),
                          "rows": rows, "totals": totals})

