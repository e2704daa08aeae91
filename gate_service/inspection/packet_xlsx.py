"""The audit packet as one XLSX workbook (openpyxl): 概要, 抽样记录 (with snapshot and plate crop pictures),
预警日对比, 人工放行, 禁止通行, 录像段. Runs in a worker thread (CPU and image work)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from openpyxl import Workbook
from openpyxl.drawing.image import Image
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from gate_service.inspection import packet_tables as t
from sheets import neutralise

BOLD = Font(bold=True)
TITLE = Font(bold=True, size=14)
DIFF = PatternFill("solid", fgColor="FFF2CC")
HEAD = PatternFill("solid", fgColor="DDEBF7")
PICTURE_HEIGHT_PX = 90
ROW_HEIGHT_PT = 70


def _table(ws: Worksheet, table: t.Table, start_row: int) -> int:
    title, headers, rows = table
    ws.cell(start_row, 1, title).font = BOLD
    for c, h in enumerate(headers, 1):
        cell = ws.cell(start_row + 1, c, h)
        cell.font, cell.fill = BOLD, HEAD
    for r, row in enumerate(rows, start_row + 2):
        for c, value in enumerate(row, 1):
            ws.cell(r, c, neutralise(value))  # override reasons, cargo, names: never a live formula
    if not rows:
        ws.cell(start_row + 2, 1, "（无）")
    return start_row + 3 + max(len(rows), 1)


def _widths(ws: Worksheet, widths: Mapping[int, float], default: float = 14) -> None:
    for c in range(1, ws.max_column + 1):
        ws.column_dimensions[get_column_letter(c)].width = widths.get(c, default)


def _picture(ws: Worksheet, data: bytes | None, anchor: str) -> None:
    if not data:
        return
    try:
        img = Image(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - a damaged image is reported in the cell, never fails the packet
        ws[anchor] = "图片无法读取"
        return
    scale = PICTURE_HEIGHT_PX / max(img.height, 1)
    img.height, img.width = PICTURE_HEIGHT_PX, int(img.width * scale)
    ws.add_image(img, anchor)


def write_packet_xlsx(data: Mapping[str, Any]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "概要"
    ws["A1"] = "重点用车单位检查材料 / inspection packet"
    ws["A1"].font = TITLE
    row = 3
    for k, v in t.cover(data):
        ws.cell(row, 1, k).font = BOLD
        ws.cell(row, 2, neutralise(v))
        row += 1
    row += 1
    ws.cell(row, 1, "口径说明").font = BOLD
    for k, v in t.definitions():
        row += 1
        ws.cell(row, 1, k)
        ws.cell(row, 2, v).alignment = Alignment(wrap_text=True)
    _widths(ws, {1: 22, 2: 90})

    title, headers, rows = t.sample_table(data)
    ws = wb.create_sheet("抽样记录")
    _table(ws, (title, headers, rows), 1)
    diff_cols = [headers.index("复核结果") + 1, headers.index("差异项") + 1]
    snap_col, crop_col = headers.index("抓拍") + 1, headers.index("车牌图") + 1
    for i, s in enumerate(data["sample"]):
        r = 3 + i
        ws.row_dimensions[r].height = ROW_HEIGHT_PT
        if s["check"]["differences"]:
            for c in diff_cols:
                ws.cell(r, c).fill = DIFF
        _picture(ws, s["snapshot"], f"{get_column_letter(snap_col)}{r}")
        _picture(ws, s["crop"], f"{get_column_letter(crop_col)}{r}")
    _widths(ws, {3: 20, 7: 12, 9: 28, snap_col: 24, crop_col: 22, diff_cols[0]: 22})

    ws = wb.create_sheet("预警日对比")
    row = 1
    for table in t.comparison_tables(data):
        row = _table(ws, table, row)
    _widths(ws, {1: 20, 10: 38})

    for name, table in (("人工放行", t.overrides_table(data)), ("禁止通行", t.denials_table(data)),
                        ("录像段", t.segments_table(data))):
        ws = wb.create_sheet(name)
        _table(ws, table, 1)
        _widths(ws, {1: 20, 2: 20, 3: 20, 7: 66 if name == "录像段" else 14, 9: 38, 8: 38})
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
