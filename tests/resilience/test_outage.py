"""Nothing lost when PostgreSQL goes away: gates keep deciding, passages wait in the spool, then reach the
ledger in order, each exactly once, with the hash chain intact."""

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest

from gate_service import keys
from gate_service.config import Settings
from gate_service.db.embedded import embedded_server
from gate_service.ledger import store as ledger
from tests.pg_outage import start_server, stop_server


@pytest.fixture
def own_server():
    """A PostgreSQL of this test's own: it is stopped and started again mid-test."""
    root = Path(tempfile.mkdtemp(prefix="cg-outage-"))
    server = embedded_server(root, cleanup_mode="delete")
    yield server
    server.cleanup()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def service(aiohttp_client, own_server, tmp_path):
    """The service on ``own_server`` with a city checkpoint; ``make(role)`` gives a token's headers."""
    from gate_service import auth
    from gate_service.app import create_app

    settings = Settings(database_url=own_server.get_uri(), data_dir=tmp_path / "data", run_scheduler=False,
                        pool_max=4)
    app = create_app(settings)
    client = await aiohttp_client(app)

    async def make(role):
        _, secret = await auth.create_token(app[keys.POOL], role, name=f"outage-{role}")
        return {"Authorization": f"Bearer {secret}"}

    admin = await make("admin")
    await client.put("/api/v1/gates/city-1", json={"name": "市区检查站", "zone_id": "city"}, headers=admin)
    return app, client, admin, make


async def test_outage_mid_stream_loses_nothing_and_keeps_the_chain(service, own_server, tmp_path):
    app, client, admin, _ = service
    pool = app[keys.POOL]
    await client.put("/api/v1/gates/city-1", json={"name": "市区检查站", "zone_id": "city"}, headers=admin)
    await client.put("/api/v1/vehicles/晋LC3333", json={"plate_color": "yellow", "emission_stage": 3,
                                                        "fuel_type": "diesel", "vehicle_class": "heavy_truck"},
                     headers=admin)

    async def send(i):
        resp = await client.post("/api/v1/gates/city-1/passages", headers=admin, json={
            "plate": "晋LC3333" if i % 2 else "晋LA0001", "direction": "in", "client_ref": f"p-{i}"})
        assert resp.status in (200, 201), await resp.text()
        return await resp.json()

    answers = [await send(i) for i in range(4)]
    await asyncio.to_thread(stop_server, own_server)
    during = [await send(i) for i in range(4, 9)]
    assert all(a.get("spooled") for a in during)
    # Decided from the remembered registry: the 国3 lorry is still refused, the unknown one flagged.
    assert [a["decision"] for a in during[::2]] == [answers[0]["decision"]] * 3
    assert during[1]["decision"] == "deny"
    retry = await send(5)
    assert retry["passage_id"] == during[1]["passage_id"]  # a kiosk retry during the outage: same answer
    health = await client.get("/healthz")
    assert health.status == 503
    assert (await health.json())["passages_spooled"] is True
    await asyncio.to_thread(start_server, own_server)
    after = [await send(i) for i in range(9, 12)]
    assert not any(a.get("spooled") for a in after)
    rows = await pool.fetch("SELECT client_ref, gate_seq FROM passages ORDER BY gate_seq")
    assert [r["client_ref"] for r in rows] == [f"p-{i}" for i in range(12)]
    async with pool.acquire() as conn:
        checked, breaks = await ledger.verify(conn)
    assert (checked, breaks) == (12, [])
    assert not any((tmp_path / "data" / "spool").glob("*.spool"))


async def test_a_past_dated_passage_spooled_in_an_outage_is_judged_by_its_moments_facts(service, own_server):
    # With the database down only today's facts are at hand (in memory); the facts of a past moment (the
    # blacklist as it was, the registry's versions) are in the database. The gate answers from what it has,
    # says the answer is provisional, and the ledger gets the decision by the facts of the passage's moment.
    app, client, admin, make = service
    pool = app[keys.POOL]
    police = await make("police")
    await client.put("/api/v1/vehicles/晋LD0001", json={"plate_color": "yellow-green", "fuel_type": "electric",
                                                        "vehicle_class": "heavy_truck"}, headers=admin)
    # Listed today: it did not stand against the truck in 2024.
    resp = await client.post("/api/v1/blacklist", headers=police, json={"plate": "晋LD0001", "reason": "over_limit"})
    assert resp.status in (200, 201), await resp.text()
    body = {"plate": "晋LD0001", "direction": "in", "at": "2024-11-15T09:30:00+08:00", "client_ref": "late-1"}
    online_first = await client.post("/api/v1/gates/city-1/passages", headers=admin,
                                     json={**body, "client_ref": "late-0"})
    assert (await online_first.json())["decision"] == "allow"  # what the ledger says with the database up

    stop_server(own_server)
    resp = await client.post("/api/v1/gates/city-1/passages", headers=admin, json=body)
    assert resp.status == 201, await resp.text()
    spooled = await resp.json()
    assert spooled["spooled"] is True and spooled["provisional"] is True

    start_server(own_server)
    await app[keys.JUDGE].drain_spool()
    row = await pool.fetchrow("SELECT decision, blacklisted, reasons FROM passages WHERE id = $1::uuid",
                              spooled["passage_id"])
    assert row["decision"] == "allow" and row["blacklisted"] is False
    # A retry of the same request now gets the ledger's answer, not the provisional one.
    again = await (await client.post("/api/v1/gates/city-1/passages", headers=admin, json=body)).json()
    assert again["passage_id"] == spooled["passage_id"] and again["decision"] == "allow"
    async with pool.acquire() as conn:
        checked, breaks = await ledger.verify(conn, "city-1")
    assert (checked, breaks) == (2, [])
