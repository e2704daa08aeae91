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
    from fpdf.fonts import FontFace

    # One regular face is embedded: headings are shaded, not bold.
    heads = FontFace(emphasis="", fill_color=(221, 235, 247))
    with pdf.table(col_widths=widths, line_height=3.6, text_align="LEFT", first_row_as_headings=True,
                   headings_style=heads) as tab:
        tab.row([str(h) for h in headers])
        for row in rows:
            tab.row([_cell(v) for v in row])


def _sample(pdf: Any, data: Mapping[str, Any]) -> None:
    from fpdf.fonts import FontFace

    title, headers, rows = t.sample_table(data)
    _heading(pdf, title, 11)
    pdf.set_font(FAMILY, size=6.5)
    pdf.multi_cell(0, 3.4, "标红的记录：当时记录的排放阶段/燃料/车型与现登记不一致 / red: differs from the registry now",
                   new_x="LMARGIN", new_y="NEXT")
    plain, marked = FontFace(color=(0, 0, 0)), FontFace(color=(190, 0, 0))
    for s, row in zip(data["sample"], rows, strict=True):
        if pdf.get_y() > 150:  # a record (about 40 mm) is never split over two pages
            pdf.add_page()
        top = pdf.get_y() + 2
        pdf.set_y(top)
        pairs = [(h, _cell(v)) for h, v in zip(headers, row, strict=True) if h not in ("抓拍", "车牌图")]
        half = (len(pairs) + 1) // 2
        style = marked if s["check"]["differences"] else plain
        pdf.set_font(FAMILY, size=7)
        with pdf.table(width=190, col_widths=(24, 71, 24, 71), align="LEFT", line_height=3.8,
                       first_row_as_headings=False, text_align="LEFT") as tab:
            for i in range(half):
                left = pairs[i]
                right = pairs[half + i] if half + i < len(pairs) else ("", "")
                tab.row([left[0], left[1], right[0], right[1]], style=style)
        bottom = pdf.get_y()
        x = 204
        for key, h, missing in (("snapshot", 34, "无抓拍"), ("crop", 12, "无车牌图")):
            blob = s[key]
            placed = False
            if blob:
                try:
                    info = pdf.image(io.BytesIO(blob), x=x, y=top, h=h)
                    x += info.rendered_width + 3
                    bottom = max(bottom, top + h)
                    placed = True
                except Exception:  # noqa: BLE001 - a damaged image is noted, never fails the packet
                    missing = "图片无法读取"
            if not placed:
                pdf.set_xy(x, top)
                pdf.cell(24, 4, missing)
                x += 26
        pdf.set_xy(pdf.l_margin, bottom + 1)


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
    _table(pdf, t.overrides_table(data), (30, 16, 22, 62, 24, 30, 16, 35, 42))
    _table(pdf, t.denials_table(data), (30, 16, 14, 22, 16, 95, 20, 64))
    _table(pdf, t.segments_table(data), (22, 34, 34, 30, 16, 20, 121))
    return bytes(pdf.output())
