"""Ledger export in the national record's field order (HJ 1321-2023), Chinese headers, Excel-ready."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gate_service import vocab
from gate_service.policy.model import SHANGHAI
from sheets import Sheet, write_csv, write_xlsx

HEADERS = (
    "进出时间", "进出方向", "门岗", "企业", "车牌号码", "车牌颜色", "注册登记日期", "车辆识别代号(VIN)", "发动机号码",
    "排放阶段", "燃料类型", "车辆类型", "货物名称", "运输量(吨)", "车队名称", "通行结果", "原因及依据条款",
    "是否登记", "黑名单", "预警级别", "照片", "记录编号", "门岗序号",
)


def _stage(row: dict[str, Any]) -> str:
    # The national ledger writes one character: 0-6, or D for electric.
    if row.get("fuel_type") == "electric":
        return "D"
    return "" if row.get("emission_stage") is None else str(row["emission_stage"])


def export_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
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
            vehicle.get("registered_on") or "",
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


def export_passages(rows: list[dict[str, Any]], fmt: str) -> web.Response:
    table = export_rows(rows)
    if fmt == "csv":
        body = write_csv(HEADERS, table)
        return web.Response(body=body, content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": 'attachment; filename="passages.csv"'})
    body = write_xlsx([Sheet("通行台账", HEADERS, table, formats={0: "yyyy-mm-dd hh:mm:ss", 13: "0.0"},
                             widths={0: 20, 16: 60, 21: 38})])
    return web.Response(
        body=body, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="passages.xlsx"'})
