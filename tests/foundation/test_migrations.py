import asyncpg

from gate_service.db.migrate import apply_migrations, load_migrations


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
