"""Spreadsheets in and out: CSV (UTF-8 or GB18030, as Chinese Excel saves it) and XLSX.

A leaf library shared by `gate_service` and `blacklist` for imports and exports; it knows nothing
of either. Exports open in Excel: CSV carries a UTF-8 BOM, XLSX keeps numbers as numbers.
"""

from sheets.read import Row, SheetError, read_table
from sheets.write import Sheet, write_csv, write_xlsx

__all__ = ["Row", "Sheet", "SheetError", "read_table", "write_csv", "write_xlsx"]
