"""Report exports for the ecology bureau: Chinese headers, numbers as numbers, shares as percentages.

XLSX carries one sheet per view: 汇总 (one line per enterprise, plus the city total when several), 月度 (one line
per enterprise and month). ``view=months`` (the console's 按月 XLSX) is the monthly workbook instead: 月度, then
one sheet per month with each enterprise's line for that month. CSV holds one view (``view=summary`` or
``view=months``), UTF-8 with BOM. Both stream (sheets.stream): the workbook is written in a worker process.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from gate_service import vocab
from gate_service.errors import ApiError
from sheets import Sheet, SheetError
from sheets.stream import XLSX, csv_response, in_chunks, xlsx_response

__all__ = ["XLSX", "export_reports"]
PERCENT = "0.0%"
TONNES = "0.0"
DAY = "yyyy-mm-dd"

SUMMARY_HEADERS = (
    "企业编号", "企业名称", "行业", "县(市、区)", "所在区域", "起始日期", "截止日期",
    "进厂车次", "清洁运输车次", "车次清洁运输比例",
    "运输总量(吨)", "清洁运输量(吨)", "运输量清洁运输比例",
    "公路运输量(吨)", "新能源及清洁能源车辆运输量(吨)", "铁路(吨)", "水路(吨)", "管道(吨)", "管状带式输送(吨)",
    "考核口径", "目标比例", "是否达标",
    "预计期末车次", "预计期末清洁车次", "尚需清洁运输车次", "剩余天数",
    "人工放行次数",
)
SUMMARY_FORMATS = {5: DAY, 6: DAY, 9: PERCENT, 10: TONNES, 11: TONNES, 12: PERCENT, 13: TONNES, 14: TONNES,
                   15: TONNES, 16: TONNES, 17: TONNES, 18: TONNES, 20: PERCENT}

MONTH_HEADERS = (
    "企业编号", "企业名称", "月份", "起始日期", "截止日期",
    "进厂车次", "清洁运输车次", "车次清洁运输比例",
    "运输总量(吨)", "清洁运输量(吨)", "运输量清洁运输比例",
    "公路运输量(吨)", "新能源及清洁能源车辆运输量(吨)", "非公路运输量(吨)",
    "考核口径", "目标比例", "是否达标",
)
MONTH_FORMATS = {3: DAY, 4: DAY, 7: PERCENT, 8: TONNES, 9: TONNES, 10: PERCENT, 11: TONNES, 12: TONNES,
                 13: TONNES, 15: PERCENT}

BASIS = {"tonnes": "运输量", "trips": "车次"}


def met_label(met: bool | None, target: float | None) -> str:
    if target is None:
        return "无考核目标"
    if met is None:
        return "无运输记录"
    return "达标" if met else "未达标"


def _day(value: str) -> date:
    return date.fromisoformat(value)


def summary_row(r: dict[str, Any]) -> list[Any]:
    p = r.get("projection") or {}
    return [
        r.get("enterprise_id", ""), r.get("enterprise_name") or "",
        vocab.INDUSTRIES.get(r.get("industry") or "", r.get("industry") or ""), r.get("county") or "",
        vocab.ZONES.get(r.get("zone_id") or "", r.get("zone_id") or ""),
        _day(r["from"]), _day(r["to"]),
        r["trips"], r["clean_trips"], r["ratio_trips"],
        r["tonnes"], r["clean_tonnes"], r["ratio_tonnes"],
        r["road_tonnes"], r["clean_road_tonnes"], r["rail_tonnes"], r["waterway_tonnes"], r["pipeline_tonnes"],
        r["conveyor_tonnes"],
        BASIS[r["basis"]], r["target"], met_label(r["met"], r["target"]),
        p.get("trips"), p.get("clean_trips"), p.get("clean_trips_needed"), p.get("days_remaining"),
        # 人工放行: guards letting through what the rules denied, which the bureau reviews (issue 15 item 8).
        r.get("manual_releases"),
    ]


def month_rows(r: dict[str, Any]) -> list[list[Any]]:
    return [[
        r["enterprise_id"], r.get("enterprise_name") or "", m["month"], _day(m["from"]), _day(m["to"]),
        m["trips"], m["clean_trips"], m["ratio_trips"],
        m["tonnes"], m["clean_tonnes"], m["ratio_tonnes"],
        m["road_tonnes"], m["clean_road_tonnes"], m["non_road_tonnes"],
        BASIS[m["basis"]], m["target"], met_label(m["met"], m["target"]),
    ] for m in r["months"]]


def tables(reports: list[dict[str, Any]], totals: dict[str, Any] | None) -> tuple[list[list[Any]], list[list[Any]]]:
    summary = [summary_row(r) for r in reports]
    if totals is not None:
        total = summary_row({**totals, "enterprise_id": "合计",
                             "enterprise_name": f"全市合计({totals['enterprises']}家)"})
        summary.append(total)
    months = [row for r in reports for row in month_rows(r)]
    return summary, months


def _sheets(summary: list[list[Any]], months: list[list[Any]], view: str) -> list[Sheet]:
    month_sheet = Sheet("月度", MONTH_HEADERS, months, formats=MONTH_FORMATS)
    if view != "months":
        return [Sheet("汇总", SUMMARY_HEADERS, summary, formats=SUMMARY_FORMATS), month_sheet]
    by_month: dict[str, list[list[Any]]] = {}
    for row in months:
        by_month.setdefault(row[2], []).append(row)
    return [month_sheet] + [Sheet(f"{m}月", MONTH_HEADERS, rows, formats=MONTH_FORMATS)
                            for m, rows in sorted(by_month.items())]


async def export_reports(request: web.Request, reports: list[dict[str, Any]], totals: dict[str, Any] | None,
                         fmt: str, view: str, name: str, *, xlsx_max_rows: int) -> web.StreamResponse:
    summary, months = tables(reports, totals)
    if fmt == "csv":
        headers, rows = (MONTH_HEADERS, months) if view == "months" else (SUMMARY_HEADERS, summary)
        return await csv_response(request, f"{name}.csv", headers, in_chunks(rows))
    if view == "months":
        name = name.replace("clean-transport-", "clean-transport-months-", 1)
    try:
        return await xlsx_response(request, f"{name}.xlsx",
                                   [(s, in_chunks(list(s.rows))) for s in _sheets(summary, months, view)],
                                   max_rows=xlsx_max_rows)
    except SheetError as exc:
        raise ApiError(exc.status, exc.code, exc.message, field="format") from None
