"""The audit packet as a PDF for print: A4 landscape, Chinese text in an embedded (subset) CJK font.

fpdf2 embeds a subset of the font it is given, so the PDF shows the same on any viewer or printer. The font is
Noto Sans CJK SC from Debian's ``fonts-noto-cjk`` (SIL OFL; ``scripts/test`` installs it), or WenQuanYi Zen Hei,
or the file named by ``CLEANGATE_PDF_FONT`` (``path`` or ``path#index`` for a collection). Without one the
packet's PDF answers 503 ``pdf_font_missing`` (the XLSX still works). Runs in a worker thread.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gate_service.inspection import packet_tables as t

# (file, index in the collection): Noto Sans CJK's collection holds JP, KR, SC, TC, HK in that order.
FONT_CANDIDATES = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
)
FAMILY = "cjk"


class FontMissing(RuntimeError):
    pass


def find_font() -> tuple[str, int]:
    configured = os.environ.get("CLEANGATE_PDF_FONT")
    if configured:
        path, _, index = configured.partition("#")
        if not Path(path).is_file():
            raise FontMissing(f"CLEANGATE_PDF_FONT={configured}: no such file")
        return path, int(index or 0)
    for path, index in FONT_CANDIDATES:
        if Path(path).is_file():
            return path, index
    raise FontMissing("no CJK font found (install Debian's fonts-noto-cjk or set CLEANGATE_PDF_FONT)")


def _pdf() -> Any:
    from fpdf import FPDF

    path, index = find_font()
    pdf = FPDF(orientation="landscape", unit="mm", format="A4")
    pdf.set_auto_page_break(True, margin=12)
    pdf.set_margins(10, 10, 10)
    if path.lower().endswith((".ttc", ".otc")):
        pdf.add_font(FAMILY, fname=path, collection_font_number=index)
    else:
        pdf.add_font(FAMILY, fname=path)
    return pdf


def _heading(pdf: Any, text: str, size: float = 11) -> None:
    pdf.set_font(FAMILY, size=size)
    pdf.ln(2)
    pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, size=7)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(pdf: Any, table: t.Table, widths: tuple[float, ...] | None = None) -> None:
    title, headers, rows = table
    _heading(pdf, title, 10)
    if not rows:
        pdf.cell(0, 5, "（无）", new_x="LMARGIN", new_y="NEXT")
        return
    pdf.set_font(FAMILY, size=6.5)
    with pdf.table(col_widths=widths, line_height=3.6, text_align="LEFT", first_row_as_headings=True) as tab:
        tab.row([str(h) for h in headers])
        for row in rows:
            tab.row([_cell(v) for v in row])


def _sample(pdf: Any, data: Mapping[str, Any]) -> None:
    title, headers, rows = t.sample_table(data)
    _heading(pdf, title, 11)
    for s, row in zip(data["sample"], rows, strict=True):
        if pdf.get_y() > 160:
            pdf.add_page()
        top = pdf.get_y() + 1
        pdf.set_font(FAMILY, size=7.5)
        fields = [(h, v) for h, v in zip(headers, row, strict=True) if h not in ("抓拍", "车牌图")]
        text = "\n".join(f"{h}：{_cell(v)}" for h, v in fields)
        if s["check"]["differences"]:
            pdf.set_text_color(180, 0, 0)  # differences marked in red
        pdf.set_xy(10, top)
        pdf.multi_cell(120, 3.4, text, border=1, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        bottom = pdf.get_y()
        x = 134
        for key, h in (("snapshot", 40), ("crop", 14)):
            blob = s[key]
            if blob:
                try:
                    info = pdf.image(io.BytesIO(blob), x=x, y=top, h=h)
                    x += info.rendered_width + 4
                    bottom = max(bottom, top + h)
                except Exception:  # noqa: BLE001 - a damaged image is noted, never fails the packet
                    pdf.set_xy(x, top)
                    pdf.cell(30, 5, "图片无法读取")
                    x += 34
            else:
                pdf.set_xy(x, top)
                pdf.cell(30, 5, "无抓拍" if key == "snapshot" else "无车牌图")
                x += 34
        pdf.set_y(bottom + 3)


def write_packet_pdf(data: Mapping[str, Any]) -> bytes:
    pdf = _pdf()
    pdf.set_title(f"检查材料 {data['enterprise']['id']} {data['from']}—{data['to']}")
    pdf.set_creator("cleangate")
    pdf.add_page()
    _heading(pdf, "重点用车单位检查材料（三(六)27、28）", 15)
    pdf.set_font(FAMILY, size=9)
    with pdf.table(col_widths=(45, 232), line_height=5, text_align="LEFT", first_row_as_headings=False) as tab:
        for k, v in t.cover(data):
            tab.row([k, v])
    _heading(pdf, "口径说明", 10)
    pdf.set_font(FAMILY, size=7.5)
    for k, v in t.definitions():
        pdf.multi_cell(0, 3.8, f"{k}：{v}", new_x="LMARGIN", new_y="NEXT")
    pdf.add_page()
    _sample(pdf, data)
    pdf.add_page()
    for table in t.comparison_tables(data):
        _table(pdf, table)
    _table(pdf, t.overrides_table(data))
    _table(pdf, t.denials_table(data))
    _table(pdf, t.segments_table(data), (22, 34, 34, 30, 16, 20, 121))
    return bytes(pdf.output())
