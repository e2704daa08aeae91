"""A scratch database as an older release left it: for tests of what a migration does to existing data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from gate_service.db.connect import _init_connection
from gate_service.db.migrate import load_migrations


@asynccontextmanager
async def database_before(server_dsn: str, name: str, version: int) -> AsyncIterator[asyncpg.Connection]:
    """A fresh database ``name`` with the migrations numbered below ``version`` applied and recorded, so that
    ``apply_migrations`` brings the rest as an upgrade would; dropped afterwards."""
    from tests.conftest import with_database

    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(with_database(server_dsn, name))
        await _init_connection(conn)
        try:
            await conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                               "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            for m in load_migrations():
                if m.version < version:
                    await conn.execute(m.sql)
                    await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                                       m.version, m.name, m.checksum)
            yield conn
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
