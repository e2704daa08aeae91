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
    admin = next(line.split()[1] for line in printed.splitlines() if line.strip().startswith("admin "))
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


async def test_demo_shows_a_plausible_product(aiohttp_client, settings, capsys):
    """Issue 15 item 18: what a newcomer sees is believable and shows the plan at work."""
    from datetime import date

    from gate_service.app import create_app
    from gate_service.demo import REPORT_PERIOD, SMALL
    from plate_reader import plates

    app = create_app(replace(settings, demo=True))
    client = await aiohttp_client(app)
    pool = app[keys.POOL]
    vehicles = [dict(r) for r in await pool.fetch("SELECT * FROM vehicles")]
    today = date.today()
    for v in vehicles:
        plate = v["plate"]
        if v["registered_on"] is not None:
            assert v["registered_on"] < today, (plate, v["registered_on"])
        if v["plate_color"] == "blue":
            assert v["vehicle_class"] in SMALL, f"{plate}: a blue plate on a {v['vehicle_class']}"
        if v["vehicle_class"] == "car":
            assert v["emission_stage"] is None or v["emission_stage"] >= 5, plate
        if v["fuel_type"] in ("electric", "hydrogen", "phev"):
            assert len(plate) == 8 and plates.parse(plate).new_energy, f"{plate}: a new-energy vehicle"
        if v["vehicle_class"] in ("heavy_truck", "medium_truck", "concrete_mixer", "muck_truck"):
            assert v["plate_color"] in ("yellow", "yellow-green", "unknown"), plate
    linfen = [v for v in vehicles if v["plate"].startswith("晋L")]
    assert len(linfen) >= 40

    # History inside the 2024-25 campaign, with tonnes, decided by the campaign's rules and the December alert.
    rows = await pool.fetch("SELECT * FROM passages WHERE client_ref LIKE 'demo-history-%'")
    assert len(rows) >= 200
    assert all(date(2024, 10, 1) <= r["at"].date() <= date(2025, 3, 31) for r in rows)
    assert sum(r["tonnes"] is not None for r in rows) >= 200
    rules = {rule for r in rows for rule in r["rules"]}
    assert "dz-unretrofitted-fuel-gas" in rules  # a campaign rule (开发区未完成改造)
    assert "alert-key-industry-guo4" in rules  # the orange alert's measure
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    ecology = next(line.split() for line in lines if line.strip().startswith("ecology "))
    assert ecology[2].endswith("/bureau?" + REPORT_PERIOD)
    assert any(line.split()[0] == "kiosk" and "/kiosk?gate=" in line for line in lines if line.strip())
    assert any("Ctrl-C" in line for line in lines)
    headers = {"Authorization": f"Bearer {ecology[1]}"}
    report = await (await client.get("/api/v1/reports/clean-transport?" + REPORT_PERIOD, headers=headers)).json()
    with_target = [r for r in report["rows"] if r["target"] is not None and r["tonnes"]]
    assert with_target, "no enterprise with a target and tonnes in the linked period"
    assert all(r["ratio_tonnes"] is not None for r in with_target)
    assert {r["met"] for r in with_target} >= {True, False} or len(with_target) == 1
    await client.close()

    # A second run: new tokens, the first run's revoked, no second history.
    app2 = create_app(replace(settings, demo=True))
    client2 = await aiohttp_client(app2)
    pool2 = app2[keys.POOL]
    assert (await client2.get("/api/v1/enterprises", headers=headers)).status == 401
    assert await pool2.fetchval(
        "SELECT count(*) FROM api_tokens WHERE name LIKE 'demo-%' AND revoked_at IS NULL") == 5
    assert await pool2.fetchval("SELECT count(*) FROM passages WHERE client_ref LIKE 'demo-history-%'") == len(rows)
