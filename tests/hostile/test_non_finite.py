"""Issue 15 item 2: NaN and ±Infinity are refused at JSON parsing and by the database; a poisoned roll-up is
repaired from the ledger."""

from __future__ import annotations

import asyncpg
import pytest

from gate_service import keys

DAY = "2024-11-15T09:30:00+08:00"


async def _world(client, admin):  # type: ignore[no-untyped-def]
    await client.put("/api/v1/enterprises/e1", json={"name": "某钢铁", "industry": "steel", "zone_id": "other"},
                     headers=admin)
    await client.put("/api/v1/gates/g1", json={"name": "1号门", "enterprise_id": "e1", "zone_id": "other"},
                     headers=admin)
    await client.put("/api/v1/vehicles/晋L12345D", json={"plate_color": "yellow-green", "fuel_type": "electric",
                                                        "vehicle_class": "heavy_truck"}, headers=admin)


def _raw(body: str, headers: dict[str, str]) -> dict:  # type: ignore[type-arg]
    return {"data": body.encode(), "headers": {**headers, "Content-Type": "application/json"}}


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
async def test_passage_tonnes_must_be_finite(client, admin, app, literal) -> None:  # type: ignore[no-untyped-def]
    await _world(client, admin)
    body = f'{{"plate": "晋L12345D", "direction": "in", "at": "{DAY}", "tonnes": {literal}}}'
    resp = await client.post("/api/v1/gates/g1/passages", **_raw(body, admin))
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_value" and error["field"] == "tonnes"
    assert await app[keys.POOL].fetchval("SELECT count(*) FROM passages") == 0


async def test_transport_volumes_must_be_finite(client, admin, app) -> None:  # type: ignore[no-untyped-def]
    await _world(client, admin)
    resp = await client.put("/api/v1/enterprises/e1/transport-volumes/2024-11",
                            **_raw('{"rail_tonnes": NaN, "note": "x"}', admin))
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_value" and error["field"] == "rail_tonnes"
    assert await app[keys.POOL].fetchval("SELECT count(*) FROM transport_volumes") == 0
    # A nested one is named by its path.
    resp = await client.put("/api/v1/vehicles/晋LA1234", **_raw(
        '{"fuel_type": "diesel", "vehicle_class": "heavy_truck", "extra": {"axles": [2, Infinity]}}', admin))
    assert resp.status == 422 and (await resp.json())["error"]["field"] == "extra.axles[1]"


async def test_the_database_refuses_nan_whatever_writes_it(client, admin, app) -> None:  # type: ignore[no-untyped-def]
    await _world(client, admin)
    pool = app[keys.POOL]
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("""INSERT INTO transport_volumes (enterprise_id, month, rail_tonnes, reported_by,
                              reported_role) VALUES ('e1', '2024-11-01', 'NaN', 'x', 'admin')""")
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("INSERT INTO transport_daily (enterprise_id, day, tonnes) VALUES ('e1', '2024-11-15', 'NaN')")
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("INSERT INTO transport_daily (enterprise_id, day, clean_tonnes) "
                           "VALUES ('e1', '2024-11-16', 'NaN')")
    # The ledger itself: a passage row with NaN tonnes (e.g. from an import) is refused as well.
    ok = await client.post("/api/v1/gates/g1/passages", json={"plate": "晋L12345D", "direction": "in", "at": DAY,
                                                                "tonnes": 10}, headers=admin)
    assert ok.status == 201
    columns = await pool.fetchrow("SELECT * FROM passages")
    row = dict(columns)
    from uuid import uuid4

    row.update(id=uuid4(), tonnes="NaN", gate_seq=99, prev_hash=b"x", hash=b"y")
    names = ", ".join(row)
    params = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(f"INSERT INTO passages ({names}) VALUES ({params})",
                           *[v if k != "tonnes" else __import__("decimal").Decimal("NaN") for k, v in row.items()])


async def test_a_roll_up_holding_nan_is_rebuilt_from_the_ledger(client, admin, app) -> None:  # type: ignore[no-untyped-def]
    """What deploy/README tells an operator whose roll-up was poisoned before migration 0006."""
    await _world(client, admin)
    ok = await client.post("/api/v1/gates/g1/passages", json={"plate": "晋L12345D", "direction": "in", "at": DAY,
                                                                "tonnes": 10}, headers=admin)
    assert ok.status == 201
    pool = app[keys.POOL]
    # Simulate a database from before 0006: the CHECK did not exist and the roll-up took a NaN.
    await pool.execute("ALTER TABLE transport_daily DROP CONSTRAINT transport_daily_tonnes_finite")
    await pool.execute("UPDATE transport_daily SET tonnes = 'NaN', clean_tonnes = 'NaN'")
    # The repair, as documented: recompute the days from the ledger.
    assert await pool.fetchval("SELECT rebuild_transport_daily('2024-11-15', '2024-11-15')") == 1
    resp = await client.get("/api/v1/reports/clean-transport?from=2024-11-01&to=2024-11-30", headers=admin)
    assert resp.status == 200, await resp.text()
    assert await pool.fetchval("SELECT tonnes FROM transport_daily WHERE day = '2024-11-15'") == 10


async def test_migration_0006_repairs_a_database_poisoned_before_it(server_dsn) -> None:  # type: ignore[no-untyped-def]
    """An upgrade over data written by the old service: the migration must not fail, and the reports work."""
    from gate_service.db.migrate import load_migrations
    from tests.scratch_db import database_before

    migrations = {m.version: m.sql for m in load_migrations()}
    async with database_before(server_dsn, "cg_nan_upgrade", 6) as conn:
        await conn.execute("""INSERT INTO enterprises (id, name, industry) VALUES ('e1', '某钢铁', 'steel');
                              INSERT INTO gates (id, name, enterprise_id, zone_id) VALUES ('g1', '门', 'e1', 'other');
                              SELECT ensure_passage_partition('2024-11-01')""")
        for seq, tonnes in ((1, "NaN"), (2, "10")):
            await conn.execute(
                """INSERT INTO passages (id, at, gate_id, gate_seq, enterprise_id, zone_id, direction, plate,
                                         source, registered, decision, clean, tonnes, prev_hash, hash)
                   VALUES (gen_random_uuid(), '2024-11-15T09:30:00+08:00', 'g1', $1, 'e1', 'other', 'in',
                           '晋L12345D', 'manual', true, 'allow', true, $2::numeric, '\\x00', '\\x01')""",
                seq, tonnes)
        await conn.execute("""INSERT INTO transport_volumes (enterprise_id, month, rail_tonnes, conveyor_tonnes,
                              reported_by, reported_role) VALUES ('e1', '2024-11-01', 'NaN', 5, 'x', 'enterprise')""")
        assert await conn.fetchval("SELECT tonnes = 'NaN' FROM transport_daily") is True

        await conn.execute(migrations[6])

        daily = await conn.fetchrow("SELECT trips, tonnes, clean_tonnes FROM transport_daily")
        assert (daily["trips"], daily["tonnes"], daily["clean_tonnes"]) == (2, 10, 10)
        volumes = await conn.fetchrow("SELECT rail_tonnes, conveyor_tonnes FROM transport_volumes")
        assert (volumes["rail_tonnes"], volumes["conveyor_tonnes"]) == (0, 5)
        repaired = await conn.fetchrow(
            "SELECT target, detail FROM audit_log WHERE action = 'transport_volumes.nan_repaired'")
        assert repaired["target"] == "e1/2024-11" and repaired["detail"]["columns"] == ["rail_tonnes"]
        # The ledger row stays as written; new NaN rows are refused.
        assert await conn.fetchval("SELECT count(*) FROM passages WHERE tonnes = 'NaN'") == 1
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                """INSERT INTO passages (id, at, gate_id, gate_seq, enterprise_id, zone_id, direction, plate,
                                         source, registered, decision, tonnes, prev_hash, hash)
                   VALUES (gen_random_uuid(), '2024-11-15T10:30:00+08:00', 'g1', 3, 'e1', 'other', 'in',
                           '晋L12345D', 'manual', true, 'allow', 'NaN', '\\x00', '\\x01')""")
