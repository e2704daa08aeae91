"""Test fixtures: a real PostgreSQL (embedded per test session, or DATABASE_URL), one fresh database per test.

Each test gets a database cloned from a migrated template, which is fast (a file copy inside the server)
and keeps tests independent.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from gate_service.config import Settings

SHARED = Path(__file__).resolve().parents[2] / "shared"
EASYPR = Path(os.environ.get("CLEANGATE_EASYPR_DIR", SHARED / "data" / "plates" / "easypr"))
TEMPLATE = "cleangate_test_template"


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def server_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    import tempfile

    from gate_service.db.embedded import embedded_server

    # Outside pytest's numbered temp dirs, which a concurrent pytest session may rotate away under a
    # running server; short, because the server's Unix socket lives inside it (~100 bytes at most).
    root = Path(tempfile.mkdtemp(prefix="cg-pg-"))
    server = embedded_server(root, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        root.rmdir() if root.exists() and not any(root.iterdir()) else None


@pytest.fixture(scope="session")
def template_dsn(server_dsn: str) -> str:
    from gate_service.db.connect import _init_connection
    from gate_service.db.migrate import apply_migrations

    async def build() -> None:
        admin = await asyncpg.connect(server_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(with_database(server_dsn, TEMPLATE))
        try:
            await _init_connection(conn)
            await apply_migrations(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    return with_database(server_dsn, TEMPLATE)


@pytest.fixture
def database_url(server_dsn: str, template_dsn: str) -> Iterator[str]:
    name = "cg_test_" + uuid.uuid4().hex[:12]

    async def run(sql: str) -> None:
        admin = await asyncpg.connect(server_dsn)
        try:
            await admin.execute(sql)
        finally:
            await admin.close()

    asyncio.run(run(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"'))
    yield with_database(server_dsn, name)
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data", run_scheduler=False, pool_max=5)


@pytest.fixture
async def app(settings: Settings):  # type: ignore[no-untyped-def]
    from gate_service.app import create_app

    return create_app(settings)


@pytest.fixture
async def client(app, aiohttp_client):  # type: ignore[no-untyped-def]
    # `app` first: fixtures tear down in reverse, so the app shuts down before its database is dropped.
    return await aiohttp_client(app)


TokenFactory = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture
async def token(client, app) -> AsyncIterator[TokenFactory]:  # type: ignore[no-untyped-def]
    """`await token("police")` → headers with a fresh bearer token of that role."""
    from gate_service import auth, keys

    async def make(role: str, *, gate_id: str | None = None, enterprise_id: str | None = None) -> dict[str, str]:
        _, secret = await auth.create_token(
            app[keys.POOL], role, gate_id=gate_id, enterprise_id=enterprise_id, name=f"test-{role}"
        )
        return {"Authorization": f"Bearer {secret}"}

    yield make


@pytest.fixture
async def admin(token: TokenFactory) -> dict[str, str]:
    return await token("admin")
