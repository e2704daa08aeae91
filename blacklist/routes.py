"""HTTP endpoints (API.md "Blacklist"), declared as data for gate_service to mount."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

from aiohttp import web

from blacklist.importer import LIMITS, normalise_plate, parse_date
from blacklist.model import AUDITORS, MANAGERS, READERS, REASONS, SHANGHAI, STATUSES, BlacklistError, today
from blacklist.service import APP_KEY, Blacklist
from blacklist.store import Listing
from sheets import Sheet, SheetError
from sheets.stream import csv_response, xlsx_response

JSON = "application/json"
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TABLE_TYPES = (CSV, XLSX, "application/octet-stream")
TAG = "blacklist"

_DATE = {"type": "string", "format": "date"}

ADD = {
    "type": "object",
    "required": ["plate", "reason"],
    "additionalProperties": False,
    "properties": {
        "plate": {"type": "string", "minLength": 1, "maxLength": 16},
        "reason": {"type": "string", "enum": list(REASONS)},
        "valid_until": {**_DATE, "nullable": True},
        "note": {"type": "string", "maxLength": LIMITS["note"], "nullable": True},
        "case_ref": {"type": "string", "maxLength": LIMITS["case_ref"], "nullable": True},
        "checkpoint": {"type": "string", "maxLength": LIMITS["checkpoint"], "nullable": True},
    },
}

REVOKE = {
    "type": "object",
    "required": ["reason"],
    "additionalProperties": False,
    "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}},
}

LIST_QUERY = {
    "plate": {"type": "string", "maxLength": 16},
    "reason": {"type": "string", "enum": list(REASONS)},
    "status": {"type": "string", "enum": [*STATUSES, "all"]},
    "added_from": _DATE,
    "added_to": _DATE,
    "format": {"type": "string", "enum": ["json", "csv", "xlsx"]},
}

EXPORT_HEADERS = ("车牌号", "原因", "有效期至", "状态", "备注", "案件编号", "查处地点", "列入时间", "列入人",
                  "撤销/到期时间", "撤销原因")


def _bl(request: web.Request) -> Blacklist:
    return request.app[APP_KEY]


def _body(request: web.Request) -> dict[str, Any]:
    try:
        return _bl(request).body_of(request)
    except KeyError:
        raise BlacklistError(400, "empty_body", "请求体为空 / the request body is empty") from None


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda v: json.dumps(v, ensure_ascii=False, default=_default))


def entry_json(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "reason_label": REASONS.get(row["reason"]), "status_label": STATUSES.get(row.get("status", ""))}


def _plate_param(request: web.Request) -> str:
    return normalise_plate(request.match_info["plate"])


async def add_entry(request: web.Request) -> web.Response:
    bl = _bl(request)
    body = _body(request)
    listing = Listing(
        plate=normalise_plate(body["plate"]),
        reason=body["reason"],
        valid_until=parse_date(body["valid_until"]) if body.get("valid_until") else None,
        note=body.get("note") or None,
        case_ref=body.get("case_ref") or None,
        checkpoint=body.get("checkpoint") or None,
    )
    row, result = await bl.add(listing, bl.principal_of(request))
    # 201 for a new entry; 200 when the plate was already listed and the report was merged into it.
    return _json({**entry_json(row), "result": result}, status=201 if result == "added" else 200)


async def import_entries(request: web.Request) -> web.Response:
    bl = _bl(request)
    report = await bl.import_table(await request.read(), bl.principal_of(request))
    return _json(report)


async def revoke_entry(request: web.Request) -> web.Response:
    bl = _bl(request)
    plate = _plate_param(request)
    try:
        body = bl.body_of(request)
    except KeyError:
        raise BlacklistError(422, "missing_field", '撤销需说明原因 {"reason": "…"} / a revoke needs a reason',
                             "reason") from None
    why = body["reason"].strip()
    if not why:
        raise BlacklistError(422, "missing_field", "撤销原因不能为空 / the revoke reason is empty", "reason")
    row = await bl.revoke(plate, why, bl.principal_of(request))
    return _json(entry_json(row))


async def list_entries(request: web.Request) -> web.StreamResponse:
    bl = _bl(request)
    q = request.query
    status = q.get("status", "active")
    if status != "active" and bl.principal_of(request).role not in AUDITORS:
        raise BlacklistError(403, "forbidden_status",
                             "该角色只能查看有效的黑名单 / this role may read only the active list", "status")
    filters = {
        "plate": normalise_plate(q["plate"]) if q.get("plate") else None,
        "reason": q.get("reason"),
        "status": None if status == "all" else status,
        "added_from": parse_date(q["added_from"], "added_from") if q.get("added_from") else None,
        "added_to": parse_date(q["added_to"], "added_to") if q.get("added_to") else None,
    }
    fmt = q.get("format", "json")
    if fmt == "json":
        rows = await bl.list_entries(**filters)
        return _json({"entries": [entry_json(r) for r in rows], "count": len(rows)})
    return await _export(request, bl.iter_entries(**filters), fmt)


def _local(moment: datetime | None) -> datetime | None:
    # Excel has no time zones; the police read Beijing time.
    return moment.astimezone(SHANGHAI).replace(tzinfo=None) if moment else None


def export_rows(rows: list[Any]) -> list[list[Any]]:
    return [
        [r["plate"], REASONS.get(r["reason"], r["reason"]), r["valid_until"], STATUSES.get(r["status"]), r["note"],
         r["case_ref"], r["checkpoint"], _local(r["added_at"]), r["added_by"], _local(r["closed_at"]),
         r["close_reason"] if r["closed_kind"] == "revoked" else None]
        for r in rows
    ]


async def _formatted(chunks: AsyncIterator[list[Any]]) -> AsyncIterator[list[list[Any]]]:
    async for rows in chunks:
        yield export_rows(rows)


async def _export(request: web.Request, chunks: AsyncIterator[list[Any]], fmt: str) -> web.StreamResponse:
    name = f"blacklist-{today().strftime('%Y%m%d')}.{fmt}"
    if fmt == "csv":
        return await csv_response(request, name, EXPORT_HEADERS, _formatted(chunks))
    sheet = Sheet("黑名单", EXPORT_HEADERS, formats={2: "yyyy-mm-dd", 7: "yyyy-mm-dd hh:mm:ss", 9: "yyyy-mm-dd hh:mm:ss"},
                  widths={7: 20, 9: 20})
    try:
        return await xlsx_response(request, name, [(sheet, _formatted(chunks))])
    except SheetError as exc:
        raise BlacklistError(exc.status, exc.code, exc.message, "format") from None


async def get_entry(request: web.Request) -> web.Response:
    bl = _bl(request)
    plate = _plate_param(request)
    rows = await bl.list_entries(plate=plate, status="active")
    if not rows:
        raise BlacklistError(404, "not_listed", f"该车牌不在有效黑名单中: {plate} / not on the active blacklist", "plate")
    return _json(entry_json(rows[0]))


async def entry_history(request: web.Request) -> web.Response:
    bl = _bl(request)
    plate = _plate_param(request)
    events = await bl.history(plate)
    if not events:
        raise BlacklistError(404, "not_found", f"该车牌没有黑名单记录: {plate} / no blacklist history", "plate")
    entries = await bl.list_entries(plate=plate, status=None)
    return _json({
        "plate": plate,
        "events": [{**e, "reason_label": REASONS.get(e["reason"]) if e["reason"] else None} for e in events],
        "entries": [entry_json(r) for r in entries],
    })


def endpoints() -> list[dict[str, Any]]:
    """What gate_service mounts; the shape of gate_service.web.Endpoint."""
    return [
        {"method": "POST", "path": "/api/v1/blacklist", "handler": add_entry, "roles": MANAGERS, "tag": TAG,
         "summary": "List a plate (a plate already listed is merged: the later valid_until wins; 200)",
         "body": ADD, "status": 201},
        {"method": "POST", "path": "/api/v1/blacklist/import", "handler": import_entries, "roles": MANAGERS,
         "tag": TAG, "content_types": TABLE_TYPES,
         "summary": "Import a CSV/XLSX list (plate,reason,valid_until,note; Chinese headers and labels): "
                    "per-row results, valid rows kept, duplicates merged"},
        {"method": "GET", "path": "/api/v1/blacklist", "handler": list_entries, "roles": READERS, "tag": TAG,
         "summary": "The blacklist (default: active entries); format=csv|xlsx exports it",
         "query": LIST_QUERY, "produces": (JSON, CSV, XLSX)},
        {"method": "GET", "path": "/api/v1/blacklist/{plate}", "handler": get_entry, "roles": READERS, "tag": TAG,
         "summary": "The plate's active entry, or 404"},
        {"method": "DELETE", "path": "/api/v1/blacklist/{plate}", "handler": revoke_entry, "roles": MANAGERS,
         "tag": TAG, "body": REVOKE, "summary": "Revoke the plate's active entry (the history is kept)"},
        {"method": "GET", "path": "/api/v1/blacklist/{plate}/history", "handler": entry_history, "roles": AUDITORS,
         "tag": TAG, "summary": "Every event of the plate: add, merge, revoke, expire"},
    ]
