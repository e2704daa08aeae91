"""Write exports that Excel opens correctly, Chinese headers included."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass
class Sheet:
    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    # Excel number formats by column index, e.g. {3: "0.0%"}.
    formats: dict[int, str] = field(default_factory=dict)
    widths: dict[int, float] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return value


def write_csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else _plain(v) for v in row])
    # The BOM is what makes Excel read UTF-8 instead of the local code page.
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def write_xlsx(sheets: Sequence[Sheet]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for spec in sheets:
        ws = book.create_sheet(spec.title[:31])
        ws.append(list(spec.headers))
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in spec.rows:
            values = []
            for v in row:
                if isinstance(v, datetime) and v.tzinfo is not None:
                    v = v.replace(tzinfo=None)  # Excel has no time zones; callers pass local time
                elif isinstance(v, (list, tuple)):
                    v = "; ".join(str(x) for x in v)
                values.append(v)
            ws.append(values)
        for col, fmt in spec.formats.items():
            for cells in ws.iter_rows(min_row=2, min_col=col + 1, max_col=col + 1):
                for cell in cells:
                    cell.number_format = fmt
        for i, header in enumerate(spec.headers):
            width = spec.widths.get(i, max(10.0, min(40.0, len(str(header)) * 2.2)))
            ws.column_dimensions[get_column_letter(i + 1)].width = width
        ws.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
