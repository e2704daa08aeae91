"""Ledger export in the national record's field order (HJ 1321-2023), Chinese headers, Excel-ready.

Streamed: a worker process (export_worker) reads the rows through a server-side cursor on the read database,
a chunk at a time, and writes CSV (relayed here into a chunked response as it comes) or a workbook; so a year of
ledger neither fills memory nor takes the event loop from the gates.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import asyncpg
from aiohttp import web

from gate_service import vocab
from gate_service.errors import ApiError
from gate_service.policy.model import SHANGHAI
from sheets.stream import disposition, send_file, temp_path, too_large, worker_slot

log = logging.getLogger(__name__)

HEADERS = (
    "进出时间", "进出方向", "门岗", "企业", "车牌号码", "车牌颜色", "注册登记日期", "车辆识别代号(VIN)", "发动机号码",
    "排放阶段", "燃料类型", "车辆类型", "货物名称", "运输量(吨)", "车队名称", "通行结果", "原因及依据条款",
    "是否登记", "黑名单", "预警级别", "照片", "记录编号", "门岗序号",
)
TITLE = "通行台账"
FORMATS = {0: "yyyy-mm-dd hh:mm:ss", 6: "yyyy-mm-dd", 13: "0.0"}
WIDTHS = {0: 20, 16: 60, 21: 38}
CHUNK = 1000  # rows per cursor fetch in the worker
_RELAY = 256 * 1024


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


def _worker_error(rc: int, stderr: bytes, max_rows: int) -> ApiError:
    if rc == 2:
        return ApiError(503, "database_unavailable", "数据库暂时不可用,请稍后重试 / the database is unavailable, retry later")
    if rc == 3:
        err = too_large(max_rows)
        return ApiError(err.status, err.code, err.message, field="format")
    log.error("ledger export worker failed (%s): %s", rc, stderr.decode(errors="replace")[-2000:])
    return ApiError(500, "export_failed", "导出失败 / the export failed")


async def export_passages(request: web.Request, pool: asyncpg.Pool, dsn: str, sql: str, args: Sequence[Any],
                          fmt: str, *, xlsx_max_rows: int) -> web.StreamResponse:
    """Stream the ledger from a worker process (export_worker) that reads the same database as ``pool``."""
    if fmt == "xlsx":
        # Refuse an oversized workbook before building any of it (the worker enforces the cap too).
        count = await pool.fetchval(f"SELECT count(*) FROM (SELECT 1 FROM ({sql}) q LIMIT {xlsx_max_rows + 1}) c",
                                    *args)
        if count > xlsx_max_rows:
            raise _worker_error(3, b"", xlsx_max_rows)
    out = temp_path() if fmt == "xlsx" else "-"
    job = {"dsn": dsn, "sql": sql, "args": list(args), "format": fmt, "max_rows": xlsx_max_rows, "out": out}
    try:
        async with worker_slot():
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gate_service.passages.export_worker", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
            errors = asyncio.ensure_future(proc.stderr.read())
            try:
                proc.stdin.write(pickle.dumps(job, pickle.HIGHEST_PROTOCOL))
                await proc.stdin.drain()
                proc.stdin.close()
                if fmt == "csv":
                    return await _relay_csv(request, proc, errors, xlsx_max_rows)
                if await proc.wait() != 0:
                    raise _worker_error(proc.returncode or 1, await errors, xlsx_max_rows)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                errors.cancel()
        return await send_file(request, out, "passages.xlsx")  # removes the file
    finally:
        if out != "-" and os.path.exists(out):
            os.unlink(out)


async def _relay_csv(request: web.Request, proc: asyncio.subprocess.Process, errors: asyncio.Future[bytes],
                     max_rows: int) -> web.StreamResponse:
    assert proc.stdout is not None
    # The first bytes (or the worker's exit) before anything is sent: a database that is down is a JSON 503.
    data = await proc.stdout.read(_RELAY)
    if not data:
        raise _worker_error(await proc.wait() or 1, await errors, max_rows)
    resp = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8",
                                       "Content-Disposition": disposition("passages.csv")})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    while data:
        await resp.write(data)
        data = await proc.stdout.read(_RELAY)
    if await proc.wait() != 0:
        # Cut the transfer (no final chunk): a client never mistakes a broken export for a whole one.
        log.error("ledger export worker failed mid-stream: %s", (await errors).decode(errors="replace")[-2000:])
        raise ConnectionAbortedError("ledger export failed mid-stream")
    await resp.write_eof()
    return resp
