"""Exports as streamed HTTP responses: CSV chunk by chunk, XLSX built in a worker process.

The caller hands one async iterator of row chunks per sheet (a server-side database cursor, typically), so no
export ever holds its rows in memory, and the event loop only moves chunks: CSV lines are formatted a chunk at
a time between awaits; a workbook is written by ``sheets.xlsx_worker`` in a process of its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import sys
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from aiohttp import web

from sheets.read import SheetError
from sheets.write import Sheet, csv_head, csv_rows

log = logging.getLogger(__name__)

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_MAX_ROWS = 100_000  # a workbook beyond this is slow to build and to open; CSV has no such limit
XLSX_WORKERS = 2  # export worker processes at once; more wait their turn
_FILE_CHUNK = 256 * 1024

Chunks = AsyncIterable[Sequence[Sequence[Any]]]
_slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def too_large(max_rows: int) -> SheetError:
    return SheetError(
        "export_too_large",
        f"XLSX 导出最多 {max_rows} 行,请缩小时间范围或改用 CSV 导出(format=csv)/ "
        f"an XLSX export holds at most {max_rows} rows: narrow the period or use CSV (format=csv)",
        status=413)


def disposition(filename: str) -> str:
    # An ASCII fallback plus RFC 5987 for names with Chinese in them.
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


async def csv_response(request: web.Request, filename: str, headers: Sequence[str],
                       chunks: Chunks) -> web.StreamResponse:
    """Stream one table as CSV (UTF-8 with BOM). The first chunk is read before anything is sent, so a failing
    query still answers a JSON error; a failure later cuts the transfer (never a short file that looks whole)."""
    it = aiter(chunks)
    try:
        chunk = await anext(it, None)
        resp = web.StreamResponse(headers={"Content-Type": f"{CSV}; charset=utf-8",
                                           "Content-Disposition": disposition(filename)})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(csv_head(headers))
        while chunk is not None:
            await resp.write(csv_rows(chunk))
            chunk = await anext(it, None)
        await resp.write_eof()
        return resp
    finally:
        await _close(it)


async def _close(it: Any) -> None:
    # A client that goes away mid-export must give its database connection back now, not at garbage collection.
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        await aclose()


def worker_slot() -> asyncio.Semaphore:
    """Export worker processes running at once (each takes a core); more wait their turn."""
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        for old in [k for k in _slots if k.is_closed()]:
            del _slots[old]
        _slots[loop] = asyncio.Semaphore(XLSX_WORKERS)
    return _slots[loop]


async def build_xlsx(path: str, sheets: Sequence[tuple[Sheet, Chunks]], *, max_rows: int = XLSX_MAX_ROWS) -> int:
    """Write a workbook to ``path`` in a worker process; returns the number of rows. Raises ``export_too_large``
    (413) as soon as a sheet passes ``max_rows``."""
    async with worker_slot():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sheets.xlsx_worker", path, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert proc.stdin is not None and proc.stderr is not None
        total = 0
        try:
            for spec, chunks in sheets:
                count = 0
                proc.stdin.write(pickle.dumps(("sheet", replace(spec, rows=())), pickle.HIGHEST_PROTOCOL))
                it = aiter(chunks)
                try:
                    async for chunk in it:
                        count += len(chunk)
                        if count > max_rows:
                            raise too_large(max_rows)
                        # drain() waits while the pipe is full: the worker's pace bounds what is in flight.
                        proc.stdin.write(pickle.dumps(("rows", list(chunk)), pickle.HIGHEST_PROTOCOL))
                        await proc.stdin.drain()
                finally:
                    await _close(it)
                total += count
            proc.stdin.write(pickle.dumps(("end", None)))
            await proc.stdin.drain()
            proc.stdin.close()
            error = await proc.stderr.read()
            if await proc.wait() != 0:
                raise RuntimeError(f"xlsx worker failed: {error.decode(errors='replace')[-2000:]}")
            return total
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def temp_path(suffix: str = ".xlsx") -> str:
    fd, path = tempfile.mkstemp(prefix="cleangate-export-", suffix=suffix)
    os.close(fd)
    return path


async def xlsx_response(request: web.Request, filename: str, sheets: Sequence[tuple[Sheet, Chunks]], *,
                        max_rows: int = XLSX_MAX_ROWS) -> web.StreamResponse:
    """Build the workbook off the loop, then send the file. Nothing is sent until it is complete, so the row
    cap and any failure answer a JSON error."""
    path = temp_path()
    try:
        await build_xlsx(path, sheets, max_rows=max_rows)
    except BaseException:
        os.unlink(path)
        raise
    return await send_file(request, path, filename)


async def send_file(request: web.Request, path: str, filename: str) -> web.StreamResponse:
    """Send a finished workbook and remove it (whatever happens to the transfer)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, after the transfer
    finally:
        os.unlink(path)  # an open handle keeps the data; nothing is left behind on any path
    try:
        size = os.fstat(handle.fileno()).st_size
        resp = web.StreamResponse(headers={"Content-Type": XLSX, "Content-Disposition": disposition(filename)})
        resp.content_length = size
        await resp.prepare(request)
        while data := await asyncio.to_thread(handle.read, _FILE_CHUNK):
            await resp.write(data)
        await resp.write_eof()
        return resp
    finally:
        handle.close()


async def in_chunks(rows: Sequence[Sequence[Any]], size: int = 500) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """Rows already in memory (a report's few hundred lines) as chunks."""
    for i in range(0, len(rows), size):
        yield rows[i:i + size]
