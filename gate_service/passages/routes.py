"""HTTP endpoints: passages (decide + record), the ledger listing and export, heavy-pollution alerts."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Any
from uuid import UUID

from aiohttp import web

from gate_service import keys
from gate_service.auth import audit, enterprise_scope, require_gate
from gate_service.errors import ApiError
from gate_service.passages import overrides as override_rules
from gate_service.passages.export import export_passages
from gate_service.passages.judge import PassageInput, alert_level_at, body_hash, check_moment
from gate_service.policy.model import SHANGHAI
from gate_service.registry.routes import normalise_plate
from gate_service.validation import moment_or_now, parse_date, parse_datetime
from gate_service.web import Api, json_response

api = Api()

PASSAGE = {
    "type": "object",
    "required": ["plate", "direction"],
    "additionalProperties": False,
    "properties": {
        "plate": {"type": "string", "minLength": 1, "maxLength": 16},
        "direction": {"type": "string", "enum": ["in", "out"]},
        "at": {"type": "string", "format": "date-time"},
        "plate_color": {"type": "string", "enum": ["blue", "yellow", "green", "yellow-green", "white", "black",
                                                   "unknown"]},
        "cargo": {"type": "string", "maxLength": 100, "nullable": True},
        "tonnes": {"type": "number", "minimum": 0, "maximum": 1000, "nullable": True},
        "client_ref": {"type": "string", "minLength": 1, "maxLength": 100},
        "overrides": {"type": "string", "format": "uuid"},
        "override_reason": {"type": "string", "minLength": 2, "maxLength": 500},
    },
}

ALERT = {
    "type": "object",
    "required": ["level", "starts_at", "ends_at"],
    "additionalProperties": False,
    "properties": {
        "level": {"type": "string", "enum": ["yellow", "orange", "red"]},
        "starts_at": {"type": "string", "format": "date-time"},
        "ends_at": {"type": "string", "format": "date-time"},
        "note": {"type": "string", "maxLength": 500},
    },
}


def judge_of(request: web.Request) -> Any:
    return request.app[keys.JUDGE]


@api.route("POST", "/api/v1/gates/{gate_id}/passages", roles=("kiosk", "admin"), status=201,
           summary="Decide and record one passage (camera read or manual entry)", body=PASSAGE, tag="passages")
async def post_passage(request: web.Request) -> web.Response:
    gate_id = request.match_info["gate_id"]
    principal = require_gate(request, gate_id)
    body = request[keys.BODY]
    now = datetime.now(timezone.utc)
    at = parse_datetime(body["at"]) if "at" in body else now
    check_moment(at, role=principal.role, now=now)
    overrides = None
    if "overrides" in body:
        if "override_reason" not in body:
            raise ApiError(422, "missing_field", "人工放行必须填写原因 / an override needs override_reason",
                           field="override_reason")
        overrides = UUID(body["overrides"])
        cited = await override_rules.check_citation(request.app[keys.POOL], gate_id, overrides, at)
    item = PassageInput(
        gate_id=gate_id,
        plate=normalise_plate(body["plate"]),
        direction=body["direction"],
        at=at,
        source="override" if overrides else "manual",
        plate_color=body.get("plate_color"),
        cargo=body.get("cargo"),
        tonnes=body.get("tonnes"),
        client_ref=body.get("client_ref"),
        overrides=overrides,
        override_reason=body.get("override_reason"),
        body_hash=body_hash(body) if "client_ref" in body else None,
    )
    with override_rules.once():
        judged = await judge_of(request).record(item, token_id=principal.token_id, actor=principal.actor)
    response = judged.response()
    if overrides is not None and not response.get("replayed"):
        response = override_rules.describe(response, cited)
    return json_response(response, status=200 if response.get("replayed") else 201)


def _period(request: web.Request) -> tuple[datetime | None, datetime | None]:
    q = request.query

    def bound(name: str, end: bool) -> datetime | None:
        if name not in q:
            return None
        raw = q[name]
        if len(raw) == 10:  # a local day: the whole day, Asia/Shanghai
            day = parse_date(raw, name)
            moment = datetime.combine(day, time.min, SHANGHAI)
            return moment + timedelta(days=1) if end else moment
        return parse_datetime(raw, name)

    return bound("from", False), bound("to", True)


LIST_QUERY = {
    "gate_id": {"type": "string"},
    "enterprise_id": {"type": "string"},
    "plate": {"type": "string"},
    "decision": {"type": "string", "enum": ["allow", "deny"]},
    "rule": {"type": "string"},
    "from": {"type": "string"},
    "to": {"type": "string"},
    "limit": {"type": "string", "pattern": r"^[0-9]{1,6}$"},
    "format": {"type": "string", "enum": ["json", "csv", "xlsx"]},
}


LEDGER_SQL = """SELECT p.*, g.name AS gate_name, e.name AS enterprise_name FROM passages p
    LEFT JOIN gates g ON g.id = p.gate_id LEFT JOIN enterprises e ON e.id = p.enterprise_id
    WHERE ($1::text IS NULL OR p.gate_id = $1) AND ($2::text IS NULL OR p.enterprise_id = $2)
      AND ($3::text IS NULL OR p.plate = $3) AND ($4::timestamptz IS NULL OR p.at >= $4)
      AND ($5::timestamptz IS NULL OR p.at < $5) AND ($6::text IS NULL OR p.decision = $6)
      AND ($7::text IS NULL OR $7 = ANY (p.rules))
    ORDER BY p.at DESC, p.gate_seq DESC LIMIT $8"""


@api.route("GET", "/api/v1/passages", roles=("ecology", "admin", "enterprise", "kiosk"),
           summary="The ledger, filtered; format=csv|xlsx exports in the national field order", query=LIST_QUERY,
           tag="passages", produces=("application/json", "text/csv",
                                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
async def list_passages(request: web.Request) -> web.StreamResponse:
    q = request.query
    principal = request[keys.PRINCIPAL]
    gate_id = q.get("gate_id")
    if principal.role == "kiosk":
        gate_id = require_gate(request, gate_id or principal.gate_id).gate_id
    enterprise_id = enterprise_scope(request, q.get("enterprise_id"))
    start, end = _period(request)
    plate = normalise_plate(q["plate"]) if q.get("plate") else None
    fmt = q.get("format", "json")
    # An export streams, so by default it holds the whole period (the console's download buttons pass no limit).
    limit = min(int(q.get("limit", "1000" if fmt == "json" else "1000000")), 1_000_000 if fmt != "json" else 10_000)
    # Exports (up to a million rows) read from the replica when one is configured; the JSON list, which guards'
    # and police screens refresh right after a passage, stays on the primary.
    pool = request.app[keys.POOL] if fmt == "json" else request.app[keys.READ_POOL]
    args = (gate_id, enterprise_id, plate, start, end, q.get("decision"), q.get("rule"), limit)
    if fmt != "json":
        settings = request.app[keys.SETTINGS]
        dsn = settings.read_database_url or request.app[keys.DB].dsn
        return await export_passages(request, pool, dsn, LEDGER_SQL, args, fmt,
                                     xlsx_max_rows=settings.export_xlsx_max_rows)
    rows = await pool.fetch(LEDGER_SQL, *args)
    return json_response({"passages": [public_row(dict(r)) for r in rows], "count": len(rows)})


def public_row(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("prev_hash", None)
    row["hash"] = bytes(row["hash"]).hex()
    row["id"] = str(row["id"])
    if row.get("overrides"):
        row["overrides"] = str(row["overrides"])
    if row.get("tonnes") is not None:
        row["tonnes"] = float(row["tonnes"])
    return row


@api.route("POST", "/api/v1/alerts", roles=("ecology", "admin"), status=201, body=ALERT, tag="alerts",
           summary="Declare a heavy-pollution alert (重污染天气预警) for a period")
async def post_alert(request: web.Request) -> web.Response:
    body = request[keys.BODY]
    starts, ends = parse_datetime(body["starts_at"], "starts_at"), parse_datetime(body["ends_at"], "ends_at")
    if ends <= starts:
        raise ApiError(422, "bad_period", "结束时间须晚于开始时间 / ends_at must be after starts_at", field="ends_at")
    principal = request[keys.PRINCIPAL]
    pool = request.app[keys.POOL]
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """INSERT INTO alerts (level, starts_at, ends_at, note, declared_by) VALUES ($1, $2, $3, $4, $5)
               RETURNING id, level, starts_at, ends_at, note, declared_by, created_at""",
            body["level"], starts, ends, body.get("note"), principal.actor,
        )
        await audit(conn, request, "alert.declare", str(row["id"]), body)
    return json_response(dict(row), status=201)


@api.route("GET", "/api/v1/alerts", roles=("ecology", "admin", "kiosk", "police", "enterprise"), tag="alerts",
           summary="Alerts; with ?at= the level in force at that moment", query={"at": {"type": "string"}})
async def get_alerts(request: web.Request) -> web.Response:
    pool = request.app[keys.POOL]
    if "at" in request.query:
        at = moment_or_now(request.query["at"], naive=SHANGHAI)
        rows = await pool.fetch(
            """SELECT id, level, starts_at, ends_at, note, declared_by, created_at FROM alerts
               WHERE starts_at <= $1 AND ends_at > $1 AND (cancelled_at IS NULL OR cancelled_at > $1)
               ORDER BY starts_at""", at)
        return json_response({"at": at.isoformat(), "level": await alert_level_at(pool, at),
                              "alerts": [dict(r) for r in rows]})
    rows = await pool.fetch(
        """SELECT id, level, starts_at, ends_at, note, declared_by, created_at, cancelled_at FROM alerts
           ORDER BY starts_at DESC LIMIT 500""")
    return json_response({"alerts": [dict(r) for r in rows]})
