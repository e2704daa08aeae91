"""Data for benchmarks/exports_load.py and the export/import tests: a big ledger made inside PostgreSQL
(generate_series) and hostile workbooks.

The ledger's hash columns are placeholders: the chain is not what these measure (``ledger verify`` would reject
them).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable
from datetime import date

import asyncpg

SEED_SQL = r"""
INSERT INTO passages (id, at, recorded_at, gate_id, gate_seq, enterprise_id, zone_id, direction, plate, source,
                      registered, emission_stage, fuel_type, vehicle_class, cargo, tonnes, decision, rules,
                      reasons, policy_id, clean, vehicle, prev_hash, hash)
SELECT gen_random_uuid(), t, t, $2, i, $3, 'other', CASE WHEN i % 2 = 0 THEN 'in' ELSE 'out' END,
       '晋L' || lpad((i % 99999)::text, 5, '0') || 'D', 'manual', true, NULL, 'electric', 'heavy_truck',
       '煤炭', 31.5, 'allow', '{}', '[]'::jsonb, 'linfen-2024-25', true,
       jsonb_build_object('registered_on', '2023-05-01', 'vin', 'LFV2A21K5C4' || lpad(i::text, 6, '0'),
                          'haulier', '临汾某运输公司'),
       '\x00'::bytea, '\x00'::bytea
FROM (SELECT i, $1::timestamptz + (i % 2000000) * interval '10 seconds' AS t
      FROM generate_series($4::bigint, $5::bigint) AS i) s
"""


async def seed_ledger(conn: asyncpg.Connection, gate_id: str, enterprise_id: str, rows: int, *,
                      start: str = "2024-11-01T00:00:00+08:00", first_seq: int = 1) -> None:
    """``rows`` passages at ``gate_id``, ten seconds apart from ``start`` (partitions made as needed)."""
    from datetime import datetime, timedelta

    begin = datetime.fromisoformat(start)
    end = begin + timedelta(seconds=10 * rows)
    # Partitions are by month in UTC or local time: start one month early to cover both.
    month = date(begin.year - (begin.month == 1), (begin.month - 2) % 12 + 1, 1)
    while month <= end.date():
        await conn.execute("SELECT ensure_passage_partition($1)", month)
        month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    await conn.execute(SEED_SQL, begin, gate_id, enterprise_id, first_seq, first_seq + rows - 1)


def workbook(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def rewrite_member(data: bytes, name: str, edit: Callable[[bytes], bytes | Iterable[bytes]]) -> bytes:
    """The same zip with member ``name`` replaced by ``edit(old bytes)`` (bytes, or an iterable of chunks)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename != name:
                dst.writestr(item, body)
                continue
            new = edit(body)
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            with dst.open(info, "w", force_zip64=True) as member:
                for chunk in [new] if isinstance(new, bytes) else new:
                    member.write(chunk)
    return out.getvalue()


def zip_bomb(inflated_mib: int) -> bytes:
    """A real workbook whose one cell inflates to ``inflated_mib`` MiB of text (kilobytes on the wire)."""
    good = workbook([["车牌号", "原因"], ["晋LA1234", "超标排放"]])

    def huge(_: bytes) -> Iterable[bytes]:
        yield (b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
               b'<row r="1"><c r="A1" t="inlineStr"><is><t>')
        block = b"A" * 2**20
        for _ in range(inflated_mib):
            yield block
        yield b"</t></is></c></row></sheetData></worksheet>"

    return rewrite_member(good, "xl/worksheets/sheet1.xml", huge)
