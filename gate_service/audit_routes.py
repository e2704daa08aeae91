"""The audit trail: reading ``audit_log``, and writing it for the blacklist's changes.

``audit_log`` is append-only (a trigger refuses UPDATE and DELETE). Every change made through the API by an
admin, the police or the ecology bureau lands there with who (token id, name, role), what (action, target,
detail), when and from where (the client address, through trusted proxies - see gate_service.proxy). The
endpoints of gate_service call ``gate_service.auth.audit`` inside their own transaction.

The blacklist package keeps its own append-only ``blacklist_events`` (who, role, token, when, why, case) and is
the record of the list itself. It does not import gate_service and records no client address, so
``audited_blacklist`` wraps its change endpoints here: after a successful change one ``audit_log`` row is
written (``blacklist.add``, ``blacklist.import``, ``blacklist.revoke``) so that one query over ``audit_log``
answers "what did this token change, and from where", for every kind of change. That row is written after the
blacklist's own transaction commits; if it failed, the change still stands in ``blacklist_events`` and the
request answers 503/500, so a client never takes an unaudited change for a success without an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, time, timedelta
from typing import Any

from aiohttp import web

from gate_service import keys
from gate_service.auth import audit
from gate_service.policy.model import SHANGHAI
from gate_service.validation import parse_date, parse_datetime
from gate_service.web import Api, json_response

api = Api()

QUERY = {
    "actor": {"type": "string", "maxLength": 200},
    "action": {"type": "string", "maxLength": 100},
    "target": {"type": "string", "maxLength": 200},
    "role": {"type": "string", "enum": ["admin", "kiosk", "police", "ecology", "enterprise"]},
    "from": {"type": "string"},
    "to": {"type": "string"},
    "before": {"type": "string", "pattern": r"^[0-9]{1,18}$"},
    "limit": {"type": "string", "pattern": r"^[0-9]{1,4}$"},
}

ENTRY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "token_id": {"type": "integer", "nullable": True},
        "actor": {"type": "string"},
        "role": {"type": "string"},
        "action": {"type": "string"},
        "target": {"type": "string"},
        "detail": {"type": "object"},
        "remote": {"type": "string", "nullable": True},
    },
}


def _bound(raw: str, name: str, end: bool) -> datetime:
    if len(raw) == 10:  # a local day, Asia/Shanghai: from its start / to its end
        moment = datetime.combine(parse_date(raw, name), time.min, SHANGHAI)
        return moment + timedelta(days=1) if end else moment
    moment = parse_datetime(raw, name)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)


@api.route(
    "GET", "/api/v1/audit", roles=("admin",), tag="audit", query=QUERY,
    summary="The audit log, newest first: actor, action (exact, or a prefix ending in '.', e.g. 'blacklist.'), "
            "target, role, from/to (date or date-time), before=<id> for the next page, limit ≤ 1000",
    response={"type": "object", "properties": {
        "entries": {"type": "array", "items": ENTRY}, "next_before": {"type": "integer", "nullable": True}}},
)
async def list_audit(request: web.Request) -> web.StreamResponse:
    q = request.query
    where: list[str] = []
    args: list[Any] = []

    def cond(sql: str, value: Any) -> None:
        args.append(value)
        where.append(sql.replace("?", f"${len(args)}"))

    if "actor" in q:
        cond("actor = ?", q["actor"])
    if "action" in q:
        action = q["action"]
        if action.endswith("."):
            cond("starts_with(action, ?)", action)
        else:
            cond("action = ?", action)
    if "target" in q:
        cond("target = ?", q["target"])
    if "role" in q:
        cond("role = ?", q["role"])
    if "from" in q:
        cond("at >= ?", _bound(q["from"], "from", False))
    if "to" in q:
        cond("at < ?", _bound(q["to"], "to", True))
    if "before" in q:
        cond("id < ?", int(q["before"]))
    limit = max(1, min(int(q.get("limit", "100")), 1000))
    sql = (
        "SELECT id, at, token_id, actor, role, action, target, detail, remote FROM audit_log"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY id DESC LIMIT {limit + 1}"
    )
    rows = await request.app[keys.POOL].fetch(sql, *args)
    entries = [dict(r) for r in rows[:limit]]
    return json_response({
        "entries": entries,
        "next_before": entries[-1]["id"] if len(rows) > limit else None,
    })


# ---- the blacklist's changes into audit_log ----------------------------------------------------------

_BLACKLIST_ACTIONS = {
    ("POST", "/api/v1/blacklist"): "blacklist.add",
    ("POST", "/api/v1/blacklist/import"): "blacklist.import",
    ("DELETE", "/api/v1/blacklist/{plate}"): "blacklist.revoke",
}


def _blacklist_detail(action: str, request: web.Request, response: web.StreamResponse) -> tuple[str, dict[str, Any]]:
    body = request.get(keys.BODY)
    body = body if isinstance(body, Mapping) else {}
    if action == "blacklist.import":
        detail: dict[str, Any] = {"content_type": request.content_type, "status": response.status}
        summary = _json_of(response)
        for k in ("batch", "import_batch", "accepted", "added", "merged", "rejected", "rows", "summary"):
            if k in summary and not isinstance(summary[k], list):
                detail[k] = summary[k]
        return "blacklist", detail
    plate = request.match_info.get("plate") or str(body.get("plate", ""))
    return plate, {k: v for k, v in body.items() if k != "plate"} | {"status": response.status}


def _json_of(response: web.StreamResponse) -> dict[str, Any]:
    import json

    raw = getattr(response, "body", None)
    if not isinstance(raw, (bytes, bytearray)):
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def audited_blacklist(endpoints: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The blacklist's endpoints, its change endpoints wrapped to write one audit_log row after success."""
    out: list[dict[str, Any]] = []
    for spec in endpoints:
        spec = dict(spec)
        action = _BLACKLIST_ACTIONS.get((spec["method"], spec["path"]))
        if action is not None:
            spec["handler"] = _audited(spec["handler"], action)
        out.append(spec)
    return out


def _audited(handler: Any, action: str) -> Any:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        response = await handler(request)
        if 200 <= response.status < 300:
            target, detail = _blacklist_detail(action, request, response)
            await audit(request.app[keys.POOL], request, action, target, detail)
        return response

    wrapped.__name__ = getattr(handler, "__name__", "handler")
    wrapped.__doc__ = getattr(handler, "__doc__", None)
    return wrapped
