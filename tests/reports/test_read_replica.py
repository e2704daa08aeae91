"""CLEANGATE_READ_DATABASE_URL: reports and ledger exports read from a replica; everything else from the primary.

The "replica" is a second real database; rows are copied into it by hand to play replication, so the test can
tell which database each endpoint read.
"""

import uuid

import asyncpg
import pytest

from gate_service.config import Settings
from tests.conftest import TEMPLATE, with_database

ENTERPRISE = {"name": "襄汾某钢铁", "industry": "steel", "county": "襄汾县", "zone_id": "xiangfen",
              "retrofit_completed_on": None, "grade": "B"}


@pytest.fixture
async def replica_url(server_dsn):
    name = "cg_replica_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        yield with_database(server_dsn, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def settings(database_url, replica_url, tmp_path):
    return Settings(database_url=database_url, read_database_url=replica_url, data_dir=tmp_path / "data",
                    run_scheduler=False, pool_max=5)


async def test_reports_and_exports_read_the_replica(client, admin):
    resp = await client.put("/api/v1/enterprises/e-steel", json=ENTERPRISE, headers=admin)
    assert resp.status in (200, 201), await resp.text()
    await client.put("/api/v1/gates/g-1", json={"name": "1号门", "enterprise_id": "e-steel", "zone_id": "xiangfen"},
                     headers=admin)
    resp = await client.post("/api/v1/gates/g-1/passages", json={"plate": "晋LA1234", "direction": "in"},
                             headers=admin)
    assert resp.status == 201, await resp.text()
    # Not replicated yet. The report, read from the replica, does not know the enterprise ...
    report = "/api/v1/reports/clean-transport?enterprise_id=e-steel&from=2024-10-01&to=2024-12-31"
    resp = await client.get(report, headers=admin)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    # ... and the ledger export from the replica is empty, while the JSON list (guards' screens) and the
    # registry come from the primary.
    listed = await (await client.get("/api/v1/passages", headers=admin)).json()
    assert listed["count"] == 1 and listed["passages"][0]["plate"] == "晋LA1234"
    resp = await client.get("/api/v1/passages?format=csv", headers=admin)
    assert resp.status == 200
    assert (await resp.read()).decode("utf-8-sig").strip().count("\n") == 0  # the header line only
    assert (await client.get("/api/v1/enterprises/e-steel", headers=admin)).status == 200


async def test_replication_catches_up(client, admin, app, replica_url):
    from gate_service import keys

    resp = await client.put("/api/v1/enterprises/e-steel", json=ENTERPRISE, headers=admin)
    assert resp.status in (200, 201)
    primary = app[keys.POOL]
    assert app[keys.READ_POOL] is not primary
    row = await primary.fetchrow("SELECT * FROM enterprises WHERE id = 'e-steel'")
    conn = await asyncpg.connect(replica_url)
    try:
        cols = list(row.keys())
        await conn.execute(
            f"INSERT INTO enterprises ({', '.join(cols)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))})",
            *row.values())
    finally:
        await conn.close()
    report = "/api/v1/reports/clean-transport?enterprise_id=e-steel&from=2024-10-01&to=2024-12-31"
    resp = await client.get(report, headers=admin)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["enterprise_id"] == "e-steel" and body["enterprise_name"] == "襄汾某钢铁"
    # The ledger as JSON comes from the primary; its CSV export from the replica (both empty here, but the
    # export must succeed against the replica's schema).
    assert (await client.get("/api/v1/passages", headers=admin)).status == 200
    resp = await client.get("/api/v1/passages?format=csv", headers=admin)
    assert resp.status == 200 and (await resp.read()).startswith(b"\xef\xbb\xbf")


async def test_a_replica_that_is_down_fails_only_its_reads(database_url, tmp_path, aiohttp_client):
    from gate_service import auth, keys
    from gate_service.app import create_app

    down = "postgresql://nobody@127.0.0.1:9/none"  # the discard port: nothing listens
    app = create_app(Settings(database_url=database_url, read_database_url=down, data_dir=tmp_path / "d",
                              run_scheduler=False, pool_max=2))
    client = await aiohttp_client(app)
    assert (await client.get("/healthz")).status == 200  # started: the primary is fine
    _, secret = await auth.create_token(app[keys.POOL], "admin", name="test-admin")
    admin = {"Authorization": f"Bearer {secret}"}
    resp = await client.get("/api/v1/reports/clean-transport?from=2024-10-01&to=2024-12-31", headers=admin)
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "database_unavailable"
    assert (await client.get("/api/v1/passages", headers=admin)).status == 200
