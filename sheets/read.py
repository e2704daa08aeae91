"""Read an uploaded CSV or XLSX into rows keyed by canonical column names."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MAX_ROWS = 100_000


class SheetError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Row:
    line: int  # as the user sees it in Excel: the header is line 1
    values: dict[str, str | None]


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SheetError("bad_encoding", "文件编码无法识别(应为 UTF-8 或 GBK)/ file is neither UTF-8 nor GBK")


def _canonical(header: str, aliases: Mapping[str, str]) -> str:
    key = header.strip().lower().replace(" ", "_")
    return aliases.get(key, aliases.get(header.strip(), key))


def _cell(value: object) -> str | None:
    if value is None:
        return None
    if hasattr(value, "date") and hasattr(value, "hour"):
        # Excel dates arrive as datetimes; the registry wants plain dates.
        value = value.date() if (value.hour, value.minute, value.second) == (0, 0, 0) else value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _rows_from_csv(data: bytes) -> list[list[str | None]]:
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return [[_cell(c) for c in record] for record in csv.reader(io.StringIO(text), dialect)]


def _rows_from_xlsx(data: bytes) -> list[list[str | None]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise SheetError("bad_xlsx", f"XLSX 文件无法读取 / unreadable XLSX: {exc}") from None
    sheet = book.worksheets[0]
    rows = []
    for record in sheet.iter_rows(values_only=True):
        rows.append([_cell(c) for c in record])
        if len(rows) > MAX_ROWS + 1:
            break
    book.close()
    return rows


def read_table(data: bytes, *, aliases: Mapping[str, str] | None = None,
               required: Iterable[str] = ()) -> tuple[list[str], list[Row]]:
    """Return (columns, rows). ``aliases`` maps Chinese or alternative headers to canonical names; a first row
    naming none of the ``required`` columns is data, not a header, and the file is refused."""
    if not data.strip():
        raise SheetError("empty_file", "文件为空 / the file is empty")
    records = _rows_from_xlsx(data) if data[:4] == b"PK\x03\x04" else _rows_from_csv(data)
    while records and not any(records[0]):
        records.pop(0)
    if not records:
        raise SheetError("empty_file", "文件没有表头 / no header row")
    if len(records) > MAX_ROWS + 1:
        raise SheetError("too_many_rows", f"一次最多导入 {MAX_ROWS} 行 / at most {MAX_ROWS} rows per import")
    columns = [_canonical(h or "", aliases or {}) for h in records[0]]
    required = tuple(required)
    if required and not set(required) & set(columns):
        # Read as a header, the first vehicle would vanish and every other row lack its columns.
        raise SheetError("no_header", f"第一行应为表头,须包含列 {'/'.join(required)} / the first row must be a "
                         f"header naming {', '.join(required)}")
    rows: list[Row] = []
    for number, record in enumerate(records[1:], start=2):
        if not any(record):
            continue  # blank lines are common at the end of hand-edited files
        values = {col: (record[i] if i < len(record) else None) for i, col in enumerate(columns) if col}
        if len(record) > len(columns) and any(record[len(columns):]):
            values["__extra__"] = "多出的列 / more cells than headers"
        rows.append(Row(number, values))
    return columns, rows
