"""kill -9 during load: on restart, nothing acknowledged to a kiosk is missing from the ledger."""

import asyncio

import aiohttp
import asyncpg

from benchmarks._service import Service
from gate_service.db.embedded import embedded_server


async def test_kill_9_loses_no_acknowledged_passage():
    service = Service()
    try:
        await asyncio.to_thread(service.start)
        admin = {"Authorization": "Bearer " + await asyncio.to_thread(service.cli, "token", "create", "--role", "admin")}
        acked: set[str] = set()
        async with aiohttp.ClientSession() as session:
            await session.put(f"{service.url}/api/v1/gates/g-1", headers=admin, json={"name": "1号门", "zone_id": "city"})

            async def sender(k):
                for i in range(k, 80, 4):
                    ref = f"crash-{i}"
                    try:
                        async with session.post(f"{service.url}/api/v1/gates/g-1/passages", headers=admin, json={
                                "plate": f"晋LA{1000 + i}", "direction": "in", "client_ref": ref}) as resp:
                            if resp.status == 201:
                                acked.add(ref)
                    except aiohttp.ClientError:
                        return

            tasks = [asyncio.ensure_future(sender(k)) for k in range(4)]
            while len(acked) < 20:
                await asyncio.sleep(0.01)
            service.kill9()
            await asyncio.gather(*tasks)
        assert 20 <= len(acked) < 80
        await asyncio.to_thread(service.start)
        conn = await asyncpg.connect(embedded_server(service.data_dir, cleanup_mode=None).get_uri())
        try:
            found = {r["client_ref"] for r in await conn.fetch("SELECT client_ref FROM passages")}
            rows = await conn.fetchval("SELECT count(*) FROM passages")
        finally:
            await conn.close()
        assert acked <= found
        assert rows == len(found)  # and nothing twice
    finally:
        await asyncio.to_thread(service.close)
