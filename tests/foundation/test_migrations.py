import asyncpg

from gate_service.db.migrate import apply_migrations, load_migrations
from tests.scratch_db import database_before


async def test_migrations_apply_to_empty_database_and_are_idempotent(server_dsn):
    from tests.conftest import with_database

    name = "cg_empty_migrations"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(with_database(server_dsn, name))
        try:
            first = await apply_migrations(conn)
            assert first == [m.name for m in load_migrations()]
            assert await apply_migrations(conn) == []
            rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
            assert [r["name"] for r in rows] == first
            assert await conn.fetchval("SELECT count(*) FROM zones") == 9
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def test_migrations_are_numbered_without_gaps():
    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))


async def test_audit_log_is_append_only(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("INSERT INTO audit_log (actor, role, action, target) VALUES ('a', 'admin', 'x', 'y')")
        for sql in ("UPDATE audit_log SET actor = 'b'", "DELETE FROM audit_log"):
            try:
                await conn.execute(sql)
            except asyncpg.InsufficientPrivilegeError as exc:
                assert "append-only" in str(exc)
            else:
                raise AssertionError(f"{sql} should have been refused")
    finally:
        await conn.close()


async def test_0012_gives_vehicles_a_guard_registered_their_gates_enterprise(server_dsn):
    # The backfill reads the audit log of a database made before 0012: apply 0001-0011, register as a guard
    # would have, then let apply_migrations bring the rest.
    async with database_before(server_dsn, "cg_backfill_0012", 12) as conn:
        await conn.execute("""
            INSERT INTO enterprises (id, name, industry) VALUES ('e1', '某钢铁', 'steel');
            INSERT INTO gates (id, name, zone_id, enterprise_id) VALUES ('g1', '1号门', 'xiangfen', 'e1'),
                                                                        ('c1', '检查站', 'city', NULL);
            INSERT INTO api_tokens (id, token_hash, prefix, role, gate_id) VALUES (7, '\\x01', 'k1', 'kiosk', 'g1'),
                                                                                (8, '\\x02', 'k2', 'kiosk', 'c1');
            INSERT INTO api_tokens (id, token_hash, prefix, role) VALUES (9, '\\x03', 'a1', 'admin');
            INSERT INTO vehicles (plate, fuel_type, vehicle_class) VALUES
                ('晋LN7777', 'diesel', 'heavy_truck'), ('晋LC1111', 'diesel', 'heavy_truck'),
                ('晋LA2222', 'diesel', 'heavy_truck');
            INSERT INTO audit_log (token_id, actor, role, action, target) VALUES
                (7, 'guard', 'kiosk', 'vehicle.put', '晋LN7777'),
                (8, 'guard', 'kiosk', 'vehicle.put', '晋LC1111'),
                (9, 'admin', 'admin', 'vehicle.put', '晋LA2222'),
                (7, 'guard', 'kiosk', 'vehicle.put_refused', '晋LA2222');
        """)
        applied = await apply_migrations(conn)
        assert applied[0] == "0012_vehicle_owner.sql"
        owners = dict(await conn.fetch("SELECT plate, owner_enterprise_id FROM vehicles"))
        # A checkpoint's registration and the admin's stay nobody's; a refused attempt owns nothing.
        assert owners == {"晋LN7777": "e1", "晋LC1111": None, "晋LA2222": None}


async def test_0008_lists_the_overrides_already_in_the_ledger(server_dsn):
    # The first override of a passage is its override; a second one already in the ledger (before 0008 nothing
    # refused it) is kept as a late replay, never dropped; a denied vehicle let through is a manual release.
    async with database_before(server_dsn, "cg_backfill_0008", 8) as conn:
        await conn.execute("SELECT ensure_passage_partition('2024-11-01')")
        await conn.execute("INSERT INTO gates (id, name, zone_id) VALUES ('g1', '1号门', 'city')")
        rows = [  # id, seq, minute, plate, source, decision, reasons, overrides
            ("00000000-0000-0000-0000-000000000001", 1, 0, "晋LC3333", "camera", "deny",
             [{"rule": "stage", "effect": "deny"}], None),
            ("00000000-0000-0000-0000-000000000002", 2, 5, "晋LC3333", "override", "allow",
             [{"rule": "stage", "effect": "deny"}], "00000000-0000-0000-0000-000000000001"),
            ("00000000-0000-0000-0000-000000000003", 3, 9, "晋LA0001", "override", "allow", [],
             "00000000-0000-0000-0000-000000000001"),
        ]
        for pid, seq, minute, plate, source, decision, reasons, cited in rows:
            await conn.execute(
                """INSERT INTO passages (id, at, gate_id, gate_seq, zone_id, direction, plate, source, registered,
                                         decision, reasons, overrides, override_reason, prev_hash, hash)
                   VALUES ($1::uuid, '2024-11-15T09:00:00+08:00'::timestamptz + make_interval(mins => $2),
                           'g1', $3, 'city', 'in', $4, $5, true, $6, $7::jsonb, $8::uuid,
                           CASE WHEN $8 IS NULL THEN NULL ELSE '抢险' END, '\\x00', '\\x01')""",
                pid, minute, seq, plate, source, decision, reasons, cited)
        await apply_migrations(conn)
        listed = {str(r["override_id"])[-1]: dict(r) for r in await conn.fetch(
            "SELECT override_id, cited_id, late_replay, manual_release, plate_corrected, denied_by "
            "FROM passage_overrides")}
        assert set(listed) == {"2", "3"}
        assert listed["2"]["late_replay"] is False and listed["2"]["manual_release"] is True
        assert listed["2"]["denied_by"] == ["stage"] and listed["2"]["plate_corrected"] is False
        assert listed["3"]["late_replay"] is True and listed["3"]["plate_corrected"] is True
        assert listed["3"]["manual_release"] is False
