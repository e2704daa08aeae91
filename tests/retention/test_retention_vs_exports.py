"""Retention never holds up the gates behind a long ledger read (issue 15 item 3, found by
benchmarks/exports_load.py: a gate's passage waited 10 s while retention's DROP queued behind an export)."""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime, timezone

import asyncpg
import pytest

from gate_service import keys
from gate_service.retention.apply import drop_partition
from gate_service.retention.plan import Partition


async def test_a_drop_behind_an_export_skips_and_the_gate_does_not_wait(client, app, admin, database_url):
    await client.put("/api/v1/gates/city-1", json={"name": "市区检查站", "zone_id": "city"}, headers=admin)
    pool = app[keys.POOL]
    name = await pool.fetchval("SELECT ensure_passage_partition($1)", date(2023, 12, 1))
    part = Partition(name, datetime(2023, 12, 1, tzinfo=timezone.utc), datetime(2024, 1, 1, tzinfo=timezone.utc))
    export = await asyncpg.connect(database_url)  # an export's snapshot: a long read of the whole ledger
    try:
        tx = export.transaction(isolation="repeatable_read", readonly=True)
        await tx.start()
        await export.fetch("SELECT id FROM passages LIMIT 1")
        drop = asyncio.create_task(drop_partition(pool, part, date(2026, 3, 2)))
        await asyncio.sleep(0.3)  # the drop is at its lock now (or has given up)
        started = time.perf_counter()
        resp = await client.post("/api/v1/gates/city-1/passages", json={"plate": "晋LA1234", "direction": "in"},
                                 headers=admin)
        waited = time.perf_counter() - started
        assert resp.status == 201, await resp.text()
        assert waited < 3, f"the gate waited {waited:.1f} s behind retention"
        with pytest.raises(asyncpg.LockNotAvailableError):
            await drop
        await tx.rollback()
    finally:
        await export.close()
    # With the export gone the same drop goes through.
    assert await drop_partition(pool, part, date(2026, 3, 2)) == (0, [])
