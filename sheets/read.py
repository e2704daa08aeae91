"""Read an uploaded CSV or XLSX into rows keyed by canonical column names."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MAX_ROWS = 100_000
# An upload is small (the request body cap), but an XLSX is a zip: what it inflates to, and what the parser then
# builds, is what costs time and memory. These bound both before openpyxl sees a byte.
MAX_UNZIPPED = 64 * 1024 * 1024  # all members together
MAX_RATIO = 100  # inflated / compressed, for members past 1 MiB (real sheets compress ~5-20x)
MAX_MEMBERS = 1000
MAX_CELLS = 2_000_000
MAX_COLUMNS = 200
MAX_CELL_CHARS = 2000  # the longest field anyone imports is a 500-character note


class SheetError(ValueError):
    def __init__(self, code: str, message: str, *, status: int = 400, line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.line = line


def _too_large(what: str) -> SheetError:
    return SheetError("import_too_large", f"文件过大:{what} / the file is too large: {what}", status=413)


@dataclass(frozen=True)
class Row:
    line: int  # as the user sees it in Excel: the header is line 1
    values: dict[str, str | None]


def _at_line(exc: SheetError, line: int) -> SheetError:
    return SheetError(exc.code, f"第 {line} 行 / line {line}: {exc.message}", status=exc.status, line=line)


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
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        raise SheetError("import_cell_too_long",
                         f"单元格超过 {MAX_CELL_CHARS} 个字符 / a cell is longer than {MAX_CELL_CHARS} characters",
                         status=422)
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
    rows: list[list[str | None]] = []
    cells = 0
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        for record in reader:
            cells += len(record)
            if len(record) > MAX_COLUMNS or cells > MAX_CELLS:
                raise _too_large(f"最多 {MAX_COLUMNS} 列、{MAX_CELLS} 个单元格 / at most {MAX_COLUMNS} columns, "
                                 f"{MAX_CELLS} cells")
            try:
                rows.append([_cell(c) for c in record])
            except SheetError as exc:
                raise _at_line(exc, reader.line_num) from None
            if len(rows) > MAX_ROWS + 1:
                break
    except csv.Error as exc:  # a field past csv's own limit, a NUL byte, an unclosed quote at the end
        raise SheetError("bad_csv", f"CSV 第 {reader.line_num} 行无法读取 / unreadable CSV line "
                         f"{reader.line_num}: {exc}", status=422, line=reader.line_num) from None
    return rows


def check_zip(data: bytes) -> None:
    """Refuse a zip that inflates beyond the limits, from its directory alone (zipfile then stops any member
    at its declared size, so the directory cannot lie its way past this)."""
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise SheetError("bad_xlsx", f"XLSX 文件无法读取 / unreadable XLSX: {exc}") from None
    if len(members) > MAX_MEMBERS:
        raise _too_large(f"压缩包内文件过多 / more than {MAX_MEMBERS} parts")
    total = 0
    for m in members:
        total += m.file_size
        if total > MAX_UNZIPPED:
            raise _too_large(f"解压后超过 {MAX_UNZIPPED // 2**20} MiB / inflates past {MAX_UNZIPPED // 2**20} MiB")
        if m.file_size > 2**20 and m.file_size > MAX_RATIO * max(m.compress_size, 1):
            raise _too_large(f"压缩比异常({m.filename})/ suspicious compression ratio ({m.filename})")


def _rows_from_xlsx(data: bytes) -> list[list[str | None]]:
    from openpyxl import load_workbook

    check_zip(data)
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise SheetError("bad_xlsx", f"XLSX 文件无法读取 / unreadable XLSX: {exc}") from None
    try:
        sheet = book.worksheets[0]
        # The file's own <dimension> would pad every row to its width (A1:XFD1048576 is 16384 cells a row).
        sheet.reset_dimensions()
        rows: list[list[str | None]] = []
        cells = 0
        for number, record in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells += len(record)
            if len(record) > MAX_COLUMNS or cells > MAX_CELLS:
                raise _too_large(f"最多 {MAX_COLUMNS} 列、{MAX_CELLS} 个单元格 / at most {MAX_COLUMNS} columns, "
                                 f"{MAX_CELLS} cells")
            try:
                rows.append([_cell(c) for c in record])
            except SheetError as exc:
                raise _at_line(exc, number) from None
            if len(rows) > MAX_ROWS + 1:
                break
    except SheetError:
        raise
    except Exception as exc:  # a damaged part found while reading
        raise SheetError("bad_xlsx", f"XLSX 文件无法读取 / unreadable XLSX: {exc}") from None
    finally:
        book.close()
    return rows


def read_table(data: bytes, *, aliases: Mapping[str, str] | None = None,
               required: Iterable[str] = ()) -> tuple[list[str], list[Row]]:
    """Return (columns, rows). ``aliases`` maps Chinese or alternative headers to canonical names; a first row
    naming none of the ``required`` columns is data, not a header, and the file is refused.

    CPU-bound on a big file: callers on an event loop run it in a thread (:func:`read_table_async`)."""
    if not data.strip():
        raise SheetError("empty_file", "文件为空 / the file is empty")
    records = _rows_from_xlsx(data) if data[:4] == b"PK\x03\x04" else _rows_from_csv(data)
    while records and not any(records[0]):
        records.pop(0)
    if not records:
        raise SheetError("empty_file", "文件没有表头 / no header row")
    if len(records) > MAX_ROWS + 1:
        raise _too_large(f"一次最多导入 {MAX_ROWS} 行 / at most {MAX_ROWS} rows per import")
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


async def read_table_async(data: bytes, *, aliases: Mapping[str, str] | None = None,
                           required: Iterable[str] = ()) -> tuple[list[str], list[Row]]:
    import asyncio

    return await asyncio.to_thread(read_table, data, aliases=aliases, required=tuple(required))
