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


@pytest.fixture
def own_server():
    """A PostgreSQL of this test's own: it is stopped and started again mid-test."""
    root = Path(tempfile.mkdtemp(prefix="cg-outage-"))
    server = embedded_server(root, cleanup_mode="delete")
    yield server
    server.cleanup()
    shutil.rmtree(root, ignore_errors=True)


def _stop(server):
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=server.pgdata, user=server.system_user)


def _start(server):
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "start", "-o", f"-k {server.pgdata} -c listen_addresses=''", "-l", str(server.log)],
           pgdata=server.pgdata, user=server.system_user, timeout=20)


async def test_outage_mid_stream_loses_nothing_and_keeps_the_chain(aiohttp_client, own_server, tmp_path):
    from gate_service import auth
    from gate_service.app import create_app

    settings = Settings(database_url=own_server.get_uri(), data_dir=tmp_path / "data", run_scheduler=False,
                        pool_max=4)
    app = create_app(settings)
    client = await aiohttp_client(app)
    pool = app[keys.POOL]
    _, secret = await auth.create_token(pool, "admin", name="outage-test")
    admin = {"Authorization": f"Bearer {secret}"}
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
    await asyncio.to_thread(_stop, own_server)
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
    await asyncio.to_thread(_start, own_server)
    after = [await send(i) for i in range(9, 12)]
    assert not any(a.get("spooled") for a in after)
    rows = await pool.fetch("SELECT client_ref, gate_seq FROM passages ORDER BY gate_seq")
    assert [r["client_ref"] for r in rows] == [f"p-{i}" for i in range(12)]
    async with pool.acquire() as conn:
        checked, breaks = await ledger.verify(conn)
    assert (checked, breaks) == (12, [])
    assert not any((tmp_path / "data" / "spool").glob("*.spool"))
