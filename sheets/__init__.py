"""Spreadsheets in and out: CSV (UTF-8 or GB18030, as Chinese Excel saves it) and XLSX.

A leaf library shared by `gate_service` and `blacklist` for imports and exports; it knows nothing
of either. Exports open in Excel: CSV carries a UTF-8 BOM, XLSX keeps numbers as numbers, no text becomes a
formula. Big exports stream (sheets.stream); imports are bounded (sheets.read's limits) and parsed in a thread.
"""

from sheets.read import Row, SheetError, read_table, read_table_async
from sheets.write import Sheet, neutralise, write_csv, write_xlsx

__all__ = ["Row", "Sheet", "SheetError", "neutralise", "read_table", "read_table_async", "write_csv", "write_xlsx"]
