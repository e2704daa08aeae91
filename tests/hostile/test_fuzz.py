"""Fuzz the HTTP API from its own OpenAPI description (schemathesis) with an admin token.

The service runs in a real HTTP server on 127.0.0.1 (its own thread and event loop, because schemathesis calls it
synchronously) over a real, migrated database. For every operation but the WebSocket routes, valid and invalid
requests are generated from the description; every answer must be below 500, arrive within the timeout, and,
when it is an error, be ``{"error": {"code": "...", "message": "..."}}`` as JSON.

Bounded for CI: FUZZ_EXAMPLES examples per operation (env CLEANGATE_FUZZ_EXAMPLES, default 25), well under two
minutes on two cores. Set it higher for a longer hunt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, settings  # noqa: E402

from tests.conftest import TEMPLATE, with_database  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("CLEANGATE_FUZZ_EXAMPLES", "25"))
WEBSOCKETS = ("/stream", "/watch")
TIMEOUT_S = 20


class ServerThread:
    """The real app on 127.0.0.1:<free port>, in a thread with its own loop."""

    def __init__(self, app_settings: Any) -> None:
        self.settings = app_settings
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="fuzz-server")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> str:
        from aiohttp import web

        from gate_service.app import create_app

        self.thread.start()

        async def up() -> int:
            self.app = create_app(self.settings)
            self.runner = web.AppRunner(self.app, access_log=None)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        port = self.call(up())
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        try:
            self.call(self.runner.cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@pytest.fixture(scope="module")
def fuzz_target(server_dsn: str, template_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from gate_service import auth, keys
    from gate_service.config import Settings

    name = "cg_fuzz_" + uuid.uuid4().hex[:10]

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(server_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"'))
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "data"
    app_settings = dataclasses.replace(
        Settings(), database_url=with_database(server_dsn, name), data_dir=data_dir, run_scheduler=False,
        pool_max=5, rate_limits="off",
    )
    server = ServerThread(app_settings)
    base_url = server.start()
    try:
        pool = server.app[keys.POOL]

        async def seed() -> str:
            await pool.execute(
                """INSERT INTO enterprises (id, name, industry, county, zone_id)
                   VALUES ('e-fuzz', '某钢铁', 'steel', '襄汾县', 'xiangfen')""")
            _, secret = await auth.create_token(pool, "admin", name="fuzzer")
            return secret

        secret = server.call(seed())
        yield {"base_url": base_url, "headers": {"Authorization": f"Bearer {secret}"}}
    finally:
        server.stop()
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _description() -> dict[str, Any]:
    """What GET /api/v1/openapi.json serves, built without a server (the app only reads it at start)."""
    from gate_service import keys
    from gate_service.app import create_app
    from gate_service.config import Settings
    from gate_service.health import service_version
    from gate_service.web import openapi

    spec = openapi(create_app(Settings())[keys.API], title="cleangate", version=service_version())
    for path in [p for p in spec["paths"] if p.endswith(WEBSOCKETS)]:
        del spec["paths"][path]
    return spec


schema = schemathesis.openapi.from_dict(_description())


# 500s the fuzzer found in files outside this test's owner's reach, reported to their owners. Each is tolerated
# (and reported as a warning) only for its operation, so that the rest of that operation is still fuzzed and
# any other failure still fails. Remove an entry when its fix lands.
KNOWN_500: dict[tuple[str, str], str] = {}


def _header(response: Any, name: str) -> str:
    value = response.headers.get(name) or response.headers.get(name.title()) or ""
    return value[0] if isinstance(value, list) else value


def _check(response: Any, case: Any) -> None:
    where = f"{case.method} {case.formatted_path} query={case.query!r}"
    known = KNOWN_500.get((case.method.upper(), case.operation.path))
    if known and response.status_code == 500:
        warnings.warn(f"known bug, not fixed here: {where} → 500 ({known})", stacklevel=1)
        return
    assert response.status_code < 500, f"{where} → {response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        ctype = _header(response, "content-type")
        assert ctype.startswith("application/json"), f"{where} → {response.status_code} not JSON: {ctype}"
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"{where} → {body!r}"
        assert isinstance(body["error"].get("code"), str) and body["error"]["code"], f"{where} → {body!r}"
        assert isinstance(body["error"].get("message"), str) and body["error"]["message"], f"{where} → {body!r}"


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_survives_fuzzing(case: Any, fuzz_target: dict[str, Any]) -> None:
    response = case.call(base_url=fuzz_target["base_url"], headers=fuzz_target["headers"], timeout=TIMEOUT_S)
    _check(response, case)
