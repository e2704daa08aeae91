"""Demo mode: the sample registry loads, tokens work, and the simulated kiosk's photos become passages."""

import asyncio
from dataclasses import replace

import pytest

from gate_service import keys
from gate_service.demo import DEMO_GATES, ENTERPRISES, PROFILES, photo_dir


async def test_demo_loads_a_registry_and_its_kiosk_records_passages(aiohttp_client, settings, capsys):
    from gate_service.app import create_app

    app = create_app(replace(settings, demo=True))
    client = await aiohttp_client(app)
    pool = app[keys.POOL]
    zones = {r["zone_id"] for r in await pool.fetch("SELECT zone_id FROM enterprises")}
    assert {"linfen-edz", "hongtong", "xiangfen", "quwo", "houma", "huozhou", "yaodu-hitech", "city"} <= zones
    assert await pool.fetchval("SELECT count(*) FROM enterprises") == len(ENTERPRISES)
    fuels = {r["fuel_type"] for r in await pool.fetch("SELECT DISTINCT fuel_type FROM vehicles")}
    classes = {r["vehicle_class"] for r in await pool.fetch("SELECT DISTINCT vehicle_class FROM vehicles")}
    assert fuels == {f for _, f, _ in PROFILES}
    assert classes == {c for c, _, _ in PROFILES}
    printed = capsys.readouterr().out
    admin = next(line.split()[-1] for line in printed.splitlines() if line.strip().startswith("admin "))
    health = await client.get("/healthz")
    assert (await health.json())["database"] == "ok"
    resp = await client.get("/api/v1/enterprises", headers={"Authorization": f"Bearer {admin}"})
    assert resp.status == 200
    if photo_dir() is None:
        pytest.skip("no demo photos beside the repository: passages come from synthetic plates instead")
    for _ in range(240):
        count = await pool.fetchval("SELECT count(*) FROM passages WHERE source = 'camera'")
        if count:
            break
        await asyncio.sleep(0.5)
    row = await pool.fetchrow("SELECT gate_id, plate, decision, read FROM passages WHERE source = 'camera' LIMIT 1")
    assert row is not None, "the simulated kiosk recorded no passage within two minutes"
    assert row["gate_id"] in DEMO_GATES
    assert row["read"]["frames"] >= 1
