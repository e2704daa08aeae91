"""Write exports that Excel opens correctly and prints well, Chinese headers included.

Every cell of every export passes through :func:`neutralise` here, once: text a user typed (cargo, notes, names)
must never become a live formula in Excel or WPS.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

# OWASP "CSV injection": a cell starting with one of these is read as a formula (tab and CR too, since some
# spreadsheet programs strip them and then see the next character).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAX_WIDTH = 60.0


@dataclass
class Sheet:
    title: str
    headers: Sequence[str]
    rows: Iterable[Sequence[Any]] = ()
    # Excel number formats by column index, e.g. {3: "0.0%"}.
    formats: dict[int, str] = field(default_factory=dict)
    # Fixed widths by column index; the others fit the header and the first rows (CJK counted as 2).
    widths: dict[int, float] = field(default_factory=dict)


def neutralise(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe; numbers and dates pass."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def text_width(text: str) -> int:
    """Display width in Excel columns: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        value = "; ".join(str(v) for v in value)
    return neutralise(value)


# ---- CSV -------------------------------------------------------------------------------------------------------

BOM = b"\xef\xbb\xbf"  # what makes Excel read UTF-8 instead of the local code page


def csv_head(headers: Sequence[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(headers)
    return BOM + out.getvalue().encode("utf-8")


def csv_rows(rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows as CSV lines. Every text field is quoted (numbers are not, so Excel keeps them numbers), which with
    the apostrophe of :func:`neutralise` is OWASP's advice for CSV."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)
    for row in rows:
        writer.writerow([_plain(v) for v in row])
    return out.getvalue().encode("utf-8")


def write_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    return csv_head(headers) + csv_rows(rows)


# ---- XLSX ------------------------------------------------------------------------------------------------------

def _xlsx_value(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)  # Excel has no time zones; callers pass local time
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (list, tuple)):
        value = "; ".join(str(x) for x in value)
    return neutralise(value)


def _shown(value: Any, fmt: str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return "2024-01-01 00:00:00"
    if isinstance(value, date):
        return "2024-01-01"
    if isinstance(value, float) and fmt and "%" in fmt:
        return "100.0%"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def column_widths(spec: Sheet, sample: Sequence[Sequence[Any]]) -> list[float]:
    """Widths that fit the header and the sampled rows (a streamed sheet fixes its columns before its rows)."""
    widths = []
    for i, header in enumerate(spec.headers):
        if i in spec.widths:
            widths.append(spec.widths[i])
            continue
        longest = text_width(str(header))
        for row in sample:
            if i < len(row):
                longest = max(longest, text_width(_shown(row[i], spec.formats.get(i))))
        widths.append(min(MAX_WIDTH, max(8.0, longest + 2.0)))
    return widths


class XlsxBook:
    """A workbook written row by row (openpyxl write-only): memory stays flat however many rows.

    Each sheet prints the way an office prints a ledger: landscape, fitted to the page width, the header row
    repeated on every page, frozen, with an autofilter.
    """

    def __init__(self) -> None:
        from openpyxl import Workbook

        self.book = Workbook(write_only=True)
        self.ws: Any = None
        self._formats: dict[int, Any] = {}
        self._cols = 0
        self._rows = 0

    def add_sheet(self, spec: Sheet, sample: Sequence[Sequence[Any]] = ()) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        self._close_sheet()
        ws = self.book.create_sheet(spec.title[:31])
        for i, width in enumerate(column_widths(spec, sample)):
            ws.column_dimensions[get_column_letter(i + 1)].width = width
        ws.freeze_panes = "A2"
        ws.print_title_rows = "1:1"
        ws.page_setup.orientation = "landscape"
        ws.page_setup.paperSize = "9"  # A4
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0  # as many pages down as it takes
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_options.gridLines = True
        self.ws, self._cols, self._rows = ws, len(spec.headers), 1
        self._formats = dict(spec.formats)
        header = []
        for text in spec.headers:
            cell = WriteOnlyCell(ws, value=neutralise(str(text)))
            cell.font = Font(bold=True)
            header.append(cell)
        ws.append(header)

    def append(self, rows: Iterable[Sequence[Any]]) -> None:
        from openpyxl.cell import WriteOnlyCell

        ws, formats = self.ws, self._formats
        for row in rows:
            values: list[Any] = []
            for i, v in enumerate(row):
                v = _xlsx_value(v)
                if i in formats:  # empty cells too: a figure typed in later shows as the column does
                    cell = WriteOnlyCell(ws, value=v)
                    cell.number_format = formats[i]
                    values.append(cell)
                else:
                    values.append(v)
            ws.append(values)
            self._rows += 1

    def _close_sheet(self) -> None:
        from openpyxl.utils import get_column_letter

        if self.ws is not None and self._cols:
            self.ws.auto_filter.ref = f"A1:{get_column_letter(self._cols)}{max(self._rows, 1)}"

    def save(self, out: str | IO[bytes]) -> None:
        self._close_sheet()
        self.book.save(out)


def write_xlsx(sheets: Sequence[Sheet]) -> bytes:
    """A small workbook in memory (tests, the crops label file); exports stream through sheets.stream."""
    book = XlsxBook()
    for spec in sheets:
        rows = list(spec.rows)
        book.add_sheet(spec, rows[:1000])
        book.append(rows)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
