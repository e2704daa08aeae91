"""One ledger export in a process of its own: ``python -m gate_service.passages.export_worker``.

The parent (gate_service.passages.export) sends a pickled job on stdin: the read database's DSN, the query and
its arguments, the format, the row cap and, for XLSX, the file to write. The worker reads the rows through a
server-side cursor (one repeatable-read, read-only snapshot), formats them and writes CSV to stdout — the parent
relays it to the client as it comes — or a workbook to the file. Decoding, formatting and writing a year of
ledger is seconds of Python; done on the service's event loop it held the gates' answers (p99 x4 while a
CSV streamed), so it runs here, at the lowest CPU priority.

Exit status: 0 done, 2 database unavailable, 3 more rows than the cap, 1 anything else (traceback on stderr).
"""

from __future__ import annotations

import asyncio
import os
import pickle
import sys
from typing import Any

import asyncpg

from gate_service.db.connect import _init_connection
from gate_service.passages.export import CHUNK, FORMATS, HEADERS, TITLE, WIDTHS, export_rows
from sheets.write import Sheet, XlsxBook, csv_head, csv_rows

DB_DOWN, TOO_MANY = 2, 3


async def run(job: dict[str, Any]) -> int:
    try:
        conn = await asyncpg.connect(job["dsn"], timeout=10)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"database unavailable: {exc}", file=sys.stderr)
        return DB_DOWN
    try:
        await _init_connection(conn)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cursor = await conn.cursor(job["sql"], *job["args"])
            if job["format"] == "csv":
                out = sys.stdout.buffer
                out.write(csv_head(HEADERS))
                while rows := await cursor.fetch(CHUNK):
                    out.write(csv_rows(export_rows(rows)))
                out.flush()
                return 0
            book, count = XlsxBook(), 0
            spec = Sheet(TITLE, HEADERS, formats=FORMATS, widths=WIDTHS)
            first = True
            while (rows := await cursor.fetch(CHUNK)) or first:
                table = export_rows(rows)
                if first:
                    book.add_sheet(spec, table)  # widths from the first rows: columns come first
                    first = False
                count += len(table)
                if count > job["max_rows"]:
                    return TOO_MANY
                book.append(table)
            book.save(job["out"])
            return 0
    finally:
        await conn.close()


def main() -> int:
    try:
        os.nice(19)  # the gates' decisions first
    except OSError:
        pass
    job = pickle.load(sys.stdin.buffer)  # noqa: S301 - our own parent, through a pipe
    try:
        return asyncio.run(run(job))
    except BrokenPipeError:
        return 1  # the client went away; the parent already knows


if __name__ == "__main__":
    sys.exit(main())
