"""A workbook written in a process of its own: ``python -m sheets.xlsx_worker OUT.xlsx``.

The parent (sheets.stream) sends pickled messages on stdin — ``("sheet", Sheet)``, ``("rows", [...])`` … —
and the worker writes them with openpyxl's write-only mode, then saves to OUT. Building a big workbook is
seconds of pure-Python work; in another process, at a lower priority, it takes no time from the event loop
that answers the gates (a thread would, through the GIL).
"""

from __future__ import annotations

import os
import pickle
import sys

from sheets.write import Sheet, XlsxBook


def main(out: str) -> int:
    try:
        os.nice(19)  # the gates' decisions first
    except OSError:
        pass
    book = XlsxBook()
    stream = sys.stdin.buffer
    pending: Sheet | None = None
    while True:
        try:
            kind, payload = pickle.load(stream)  # noqa: S301 - our own parent, through a pipe
        except EOFError:
            return 1  # the parent gave up (client gone, row cap): no file
        if pending is not None and kind != "rows":
            book.add_sheet(pending)
            pending = None
        if kind == "sheet":
            pending = payload
        elif kind == "rows":
            if pending is not None:
                book.add_sheet(pending, payload[:1000])  # widths from the first rows: columns come first
                pending = None
            book.append(payload)
        elif kind == "end":
            book.save(out)
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
