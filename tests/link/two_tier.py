"""Two real `gate-service serve` processes, a platform and a site, each with its own embedded PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import asyncpg

from benchmarks._service import Service
from gate_service.db.embedded import embedded_server
from tests.waiting import poll

ENTERPRISE = {"name": "襄汾县某钢铁有限公司", "industry": "steel", "county": "襄汾县", "zone_id": "xiangfen"}


class LoggedService(Service):
    """A Service whose stderr goes to a file in its data dir (read it when a test fails)."""

    def start(self) -> float:
        started = time.perf_counter()
        log = open(self.data_dir / "service.log", "ab")  # noqa: SIM115 - the child keeps it open
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gate_service", "serve", "--port", str(self.port), "--data-dir",
             str(self.data_dir)], env=self.env, stdout=log, stderr=log)
        asyncio.run(self.wait_healthy())
        return time.perf_counter() - started

    async def sql(self, query: str, *args: Any) -> Any:
        """Superuser SQL on this service's own database (what a site's owner could do)."""
        conn = await asyncpg.connect(embedded_server(self.data_dir, cleanup_mode=None).get_uri())
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()


class TwoTier:
    def __init__(self, backoff: float = 2.0, batch_size: int = 500) -> None:
        self.batch_size = batch_size
        import os

        level = os.environ.get("CLEANGATE_TEST_LOG_LEVEL", "WARNING")  # INFO to see both services' requests
        self.level = level
        self.platform = LoggedService(env={"CLEANGATE_RATE_LIMITS": "off", "CLEANGATE_LOG_LEVEL": level})
        self.site: LoggedService | None = None
        self.backoff = backoff
        self.p_admin: dict[str, str] = {}
        self.s_admin: dict[str, str] = {}
        self.site_token = ""

    def start(self, enterprise: str, gates: list[str]) -> None:
        self.platform.start()
        self.p_admin = {"Authorization": "Bearer " + self.platform.cli("token", "create", "--role", "admin")}
        asyncio.run(self.register(self.platform.url, self.p_admin, enterprise, gates))
        self.site_token = self.platform.cli("token", "create", "--role", "site", "--enterprise", enterprise,
                                            "--name", "襄汾钢铁厂区站点")
        self.site = LoggedService(env={"CLEANGATE_PLATFORM_URL": self.platform.url,
                                       "CLEANGATE_PLATFORM_TOKEN": self.site_token,
                                       "CLEANGATE_LINK_MAX_BACKOFF_S": str(int(self.backoff)),
                                       "CLEANGATE_LINK_BATCH_SIZE": str(self.batch_size),
                                       "CLEANGATE_RATE_LIMITS": "off", "CLEANGATE_LOG_LEVEL": self.level})
        self.site.start()
        self.s_admin = {"Authorization": "Bearer " + self.site.cli("token", "create", "--role", "admin")}
        asyncio.run(self.register(self.site.url, self.s_admin, enterprise, gates))

    @staticmethod
    async def register(url: str, admin: dict[str, str], enterprise: str, gates: list[str]) -> None:
        async with aiohttp.ClientSession(headers=admin) as s:
            async with s.put(f"{url}/api/v1/enterprises/{enterprise}", json=ENTERPRISE) as r:
                assert r.status in (200, 201), await r.text()
            for g in gates:
                async with s.put(f"{url}/api/v1/gates/{g}", json={"name": f"{g} 门岗", "enterprise_id": enterprise,
                                                                  "zone_id": "xiangfen"}) as r:
                    assert r.status in (200, 201), await r.text()

    def close(self) -> None:
        import os
        import shutil
        from pathlib import Path

        keep = os.environ.get("CLEANGATE_TEST_KEEP_LOGS")  # a folder to copy both services' logs into
        for name, svc in (("site", self.site), ("platform", self.platform)):
            if svc is not None:
                svc.stop()
                if keep and (svc.data_dir / "service.log").exists():
                    Path(keep).mkdir(parents=True, exist_ok=True)
                    shutil.copy(svc.data_dir / "service.log", Path(keep) / f"{name}.log")
                svc.close()


async def passages(url: str, headers: dict[str, str], gate: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.get(f"{url}/api/v1/passages", params={"gate_id": gate, "limit": "10000"}) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["passages"]


async def post_passages(url: str, headers: dict[str, str], gate: str, refs: list[str],
                        plate: str = "晋LA{n:04d}") -> list[dict[str, Any]]:
    out = []
    async with aiohttp.ClientSession(headers=headers) as s:
        for n, ref in enumerate(refs):
            async with s.post(f"{url}/api/v1/gates/{gate}/passages", json={
                    "plate": plate.format(n=n + 1000), "direction": "in", "client_ref": ref}) as r:
                assert r.status == 201, await r.text()
                out.append(await r.json())
    return out


async def wait_for(check: Any, timeout: float, step: float = 0.2) -> Any:
    """Poll an async check until it returns something truthy; its last value (falsy) after the timeout."""
    return await poll(check, timeout, step)


@contextlib.contextmanager
def running(enterprise: str, gates: list[str], **kw: Any) -> Iterator[TwoTier]:
    """A platform and a site started for ``enterprise``'s ``gates`` (TwoTier's options in ``kw``), closed after,
    also when starting them failed half-way."""
    t = TwoTier(**kw)
    try:
        t.start(enterprise, gates)
        yield t
    finally:
        t.close()
