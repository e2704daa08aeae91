"""Ledger export in the national record's field order (HJ 1321-2023), Chinese headers, Excel-ready.

Streamed: rows come from a server-side cursor on the read pool, a chunk at a time, into a chunked CSV response
or a workbook written in a worker process (sheets.stream), so a year of ledger neither fills memory nor holds
up the gates.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date
from typing import Any

import asyncpg
from aiohttp import web

from gate_service import vocab
from gate_service.errors import ApiError
from gate_service.policy.model import SHANGHAI
from sheets import Sheet, SheetError
from sheets.stream import csv_response, too_large, xlsx_response

HEADERS = (
    "进出时间", "进出方向", "门岗", "企业", "车牌号码", "车牌颜色", "注册登记日期", "车辆识别代号(VIN)", "发动机号码",
    "排放阶段", "燃料类型", "车辆类型", "货物名称", "运输量(吨)", "车队名称", "通行结果", "原因及依据条款",
    "是否登记", "黑名单", "预警级别", "照片", "记录编号", "门岗序号",
)
FORMATS = {0: "yyyy-mm-dd hh:mm:ss", 6: "yyyy-mm-dd", 13: "0.0"}
WIDTHS = {0: 20, 16: 60, 21: 38}
CHUNK = 500  # rows per cursor fetch: a few milliseconds of formatting between two awaits


def _stage(row: Mapping[str, Any]) -> str:
    # The national ledger writes one character: 0-6, or D for electric.
    if row.get("fuel_type") == "electric":
        return "D"
    return "" if row.get("emission_stage") is None else str(row["emission_stage"])


def _day(value: Any) -> date | str:
    # The registry keeps 注册登记日期 as ISO text in the vehicle snapshot; Excel should see a date.
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    return value or ""


def export_rows(rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    out = []
    for r in rows:
        vehicle = r.get("vehicle") or {}
        reasons = "; ".join(f"{x['message']}({x['clause']})" for x in r.get("reasons") or [])
        out.append([
            r["at"].astimezone(SHANGHAI).replace(tzinfo=None),
            vocab.DIRECTIONS.get(r["direction"], r["direction"]),
            r.get("gate_name") or r["gate_id"],
            r.get("enterprise_name") or r.get("enterprise_id") or "",
            r["plate"],
            vocab.PLATE_COLORS.get(r.get("plate_color") or "", r.get("plate_color") or ""),
            _day(vehicle.get("registered_on")),
            vehicle.get("vin") or "",
            vehicle.get("engine_no") or "",
            _stage(r),
            vocab.FUEL_TYPES.get(r.get("fuel_type") or "", ""),
            vocab.VEHICLE_CLASSES.get(r.get("vehicle_class") or "", ""),
            r.get("cargo") or "",
            None if r.get("tonnes") is None else float(r["tonnes"]),
            vehicle.get("haulier") or "",
            "放行" if r["decision"] == "allow" else "禁止通行",
            reasons,
            "是" if r["registered"] else "否",
            "是" if r["blacklisted"] else "否",
            vocab.ALERT_LEVELS.get(r.get("alert_level") or "", "无"),
            r.get("snapshot_ref") or "",
            str(r["id"]),
            r["gate_seq"],
        ])
    return out


async def cursor_chunks(pool: asyncpg.Pool, sql: str, args: Sequence[Any],
                        size: int = CHUNK) -> AsyncIterator[list[list[Any]]]:
    """The query's rows through a server-side cursor (one snapshot: a repeatable-read, read-only transaction),
    formatted for the export a chunk at a time."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        cursor = await conn.cursor(sql, *args)
        while rows := await cursor.fetch(size):
            yield export_rows(rows)


async def export_passages(request: web.Request, pool: asyncpg.Pool, sql: str, args: Sequence[Any], fmt: str,
                          *, xlsx_max_rows: int) -> web.StreamResponse:
    if fmt == "csv":
        return await csv_response(request, "passages.csv", HEADERS, cursor_chunks(pool, sql, args))
    # Refuse an oversized workbook before building any of it (the worker enforces the cap too).
    count = await pool.fetchval(f"SELECT count(*) FROM (SELECT 1 FROM ({sql}) q LIMIT {xlsx_max_rows + 1}) c", *args)
    if count > xlsx_max_rows:
        err = too_large(xlsx_max_rows)
        raise ApiError(err.status, err.code, err.message, field="format")
    sheet = Sheet("通行台账", HEADERS, formats=FORMATS, widths=WIDTHS)
    try:
        return await xlsx_response(request, "passages.xlsx", [(sheet, cursor_chunks(pool, sql, args))],
                                   max_rows=xlsx_max_rows)
    except SheetError as exc:  # rows arrived between the count and the cursor
        raise ApiError(exc.status, exc.code, exc.message, field="format") from None
