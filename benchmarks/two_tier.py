"""Benchmark: N sites uploading their ledgers into one platform on this machine.

    .venv/bin/python benchmarks/two_tier.py [--sites 10] [--backlog 1000] [--rate 5] [--seconds 15]

The platform is a real `gate-service serve` subprocess on its own embedded PostgreSQL. The sites are simulated
in this process (one embedded PostgreSQL per site would not fit 50 on one box): each has its own site token,
Ed25519 key and gate, builds valid hash-chained ledger rows with the ledger's own chain code, and uploads them
through the same adapter and signed batches a real site uses (gate_service.link.adapter.CleangateHttp).

1. catch-up: every site holds a backlog (a link outage) and uploads it at once: rows/s accepted, platform CPU
   (service process and its PostgreSQL) per 1,000 rows. Baseline, same run: ONE site uploading the same number
   of rows alone.
2. steady state: each site records --rate passages/s for --seconds and uploads once a second (the uplink's
   tick): upload lag (platform uploaded_at - site recorded_at) p50/p99.
3. the bureau's clean-transport report over 24 months at the platform, covering every site's rows.
"""

# ruff: noqa: E402 - sys.path is fixed before anything else is imported (see below)
from __future__ import annotations

import sys

# Run as a script, this file's folder comes first on sys.path, and its name would shadow the standard library's
# `platform` (which uuid, asyncio and aiohttp import). Drop that entry before importing anything else.
sys.path[:] = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import asyncio
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._service import Service
from gate_service.db.connect import _init_connection
from gate_service.db.embedded import embedded_server
from gate_service.ledger.chain import GENESIS, link
from gate_service.link.adapter import CleangateHttp
from gate_service.link.enrol import create_site_token
from gate_service.link.keys import load_or_create
from gate_service.link.wire import encode_row, statement_bytes

BATCH = 500
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])  # utime stime cutime cstime
        except (FileNotFoundError, IndexError, ValueError):
            pass
    return total / TICK


def platform_pids(service: Service) -> list[int]:
    """The service process, its PostgreSQL postmaster and the postmaster's backends."""
    pids = [service.proc.pid] if service.proc else []
    pidfile = service.data_dir / "pg" / "postmaster.pid"
    if pidfile.exists():
        postmaster = int(pidfile.read_text().split()[0])
        pids.append(postmaster)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    pids.append(int(stat.parent.name))
            except (FileNotFoundError, IndexError, ValueError):
                pass
    return pids


class SimSite:
    def __init__(self, n: int, url: str, token: str, key_dir: Path) -> None:
        self.gate = f"bench-g-{n:03d}"
        self.enterprise = f"bench-e-{n:03d}"
        self.adapter = CleangateHttp(url, token)
        self.key = load_or_create(key_dir)
        self.site_id = 0
        self.rows: list[dict[str, Any]] = []
        self.prev = GENESIS
        self.acked = 0

    def record(self, k: int) -> None:
        now = datetime.now(timezone.utc)
        for _ in range(k):
            seq = len(self.rows) + 1
            row: dict[str, Any] = {
                "id": uuid4(), "at": now, "recorded_at": now, "gate_id": self.gate, "gate_seq": seq,
                "enterprise_id": self.enterprise, "zone_id": "xiangfen", "direction": "in" if seq % 2 else "out",
                "plate": f"晋L{seq % 90000 + 10000:05d}", "plate_color": "yellow", "source": "camera",
                "read": {"text": "晋L12345", "confidence": 0.97, "frames": 5}, "vehicle": {"emission_stage": 6},
                "registered": True, "emission_stage": 6, "fuel_type": "diesel", "vehicle_class": "heavy_truck",
                "cargo": "焦炭", "tonnes": None, "decision": "allow", "reasons": [], "rules": [], "policy_id": "base",
                "alert_level": None, "blacklisted": False, "clean": True, "snapshot_ref": None, "crop_ref": None,
                "video_segment_id": None, "video_offset_ms": None, "overrides": None, "override_reason": None,
                "token_id": None, "actor": "bench", "client_ref": None,
            }
            row["prev_hash"], row["hash"] = self.prev, link(self.prev, row)
            self.prev = row["hash"]
            self.rows.append(row)

    async def enrol(self) -> None:
        self.site_id = (await self.adapter.enrol(self.key.public_b64, "bench"))["site_id"]

    async def upload(self) -> int:
        sent = 0
        while self.acked < len(self.rows):
            rows = self.rows[self.acked: self.acked + BATCH]
            head = self.rows[-1]
            statement = {"kind": "batch", "site_id": self.site_id, "gate_id": self.gate, "first": rows[0]["gate_seq"],
                         "last": [rows[-1]["gate_seq"], rows[-1]["hash"].hex()],
                         "site_head": [head["gate_seq"], head["hash"].hex()],
                         "sent_at": datetime.now(timezone.utc).isoformat()}
            answer = await self.adapter.send_batch([encode_row(r) for r in rows], statement,
                                                   self.key.sign(statement_bytes(statement)))
            assert answer["chain"] == "ok", answer
            sent += answer["accepted"]
            self.acked = answer["acked_seq"]
        return sent


async def setup(service: Service, n: int, key_root: Path) -> tuple[dict[str, str], list[SimSite]]:
    admin = {"Authorization": "Bearer " + service.cli("token", "create", "--role", "admin")}
    conn = await asyncpg.connect(embedded_server(service.data_dir, cleanup_mode=None).get_uri())
    await _init_connection(conn)
    sites = []
    async with aiohttp.ClientSession(headers=admin) as s:
        for i in range(n):
            e, g = f"bench-e-{i:03d}", f"bench-g-{i:03d}"
            async with s.put(f"{service.url}/api/v1/enterprises/{e}", json={
                    "name": f"测试企业{i}", "industry": "coking", "zone_id": "xiangfen"}) as r:
                assert r.status in (200, 201), await r.text()
            async with s.put(f"{service.url}/api/v1/gates/{g}", json={
                    "name": f"{i}号门", "enterprise_id": e, "zone_id": "xiangfen"}) as r:
                assert r.status in (200, 201), await r.text()
            _, token = await create_site_token(conn, enterprise_id=e, gate_ids=[])
            sites.append(SimSite(i, service.url, token, key_root / f"site-{i}"))
    await conn.close()
    await asyncio.gather(*(site.enrol() for site in sites))
    return admin, sites


async def catch_up(service: Service, sites: list[SimSite], backlog: int) -> tuple[float, float, int]:
    for site in sites:
        site.record(backlog)
    pids = platform_pids(service)
    cpu0, t0 = cpu_seconds(pids), time.perf_counter()
    sent = sum(await asyncio.gather(*(site.upload() for site in sites)))
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(platform_pids(service)) - cpu0
    return sent / wall, cpu / sent * 1000, sent


async def steady(sites: list[SimSite], rate: float, seconds: float) -> None:
    async def run(site: SimSite) -> None:
        end = time.monotonic() + seconds
        carry = 0.0
        while time.monotonic() < end:
            carry += rate
            site.record(int(carry))
            carry -= int(carry)
            await site.upload()
            await asyncio.sleep(1.0)

    await asyncio.gather(*(run(site) for site in sites))


async def lags(service: Service, since: datetime) -> list[float]:
    conn = await asyncpg.connect(embedded_server(service.data_dir, cleanup_mode=None).get_uri())
    try:
        rows = await conn.fetch("SELECT extract(epoch FROM uploaded_at - recorded_at) AS lag FROM passages "
                                "WHERE origin_site IS NOT NULL AND recorded_at >= $1", since)
    finally:
        await conn.close()
    return sorted(float(r["lag"]) for r in rows)


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


async def report_time(service: Service, admin: dict[str, str]) -> tuple[float, int]:
    today = datetime.now(timezone.utc).date()
    start = today.replace(year=today.year - 2).isoformat()
    async with aiohttp.ClientSession(headers=admin) as s:
        t0 = time.perf_counter()
        async with s.get(f"{service.url}/api/v1/reports/clean-transport", params={"from": start,
                                                                                   "to": today.isoformat()}) as r:
            body = await r.json()
            assert r.status == 200, body
        return time.perf_counter() - t0, body.get("count", 0)


async def main(args: argparse.Namespace) -> None:
    import tempfile

    service = Service(env={"CLEANGATE_RATE_LIMITS": "off"})
    key_root = Path(tempfile.mkdtemp(prefix="cg-bench-keys-"))
    try:
        await asyncio.to_thread(service.start)
        admin, sites = await setup(service, args.sites + 1, key_root)
        alone, others = sites[0], sites[1:]
        print(f"platform benchmark: {args.sites} simulated sites, backlog {args.backlog} rows each, batches of "
              f"{BATCH}; then {args.rate} passages/s per site for {args.seconds:.0f} s")
        base_rate, base_cpu, base_n = await catch_up(service, [alone], args.backlog * args.sites)
        print(f"  baseline, 1 site alone:   {base_n:>7} rows  {base_rate:8.0f} rows/s accepted  "
              f"platform CPU {base_cpu:.3f} s per 1,000 rows")
        rate, cpu, n = await catch_up(service, others, args.backlog)
        print(f"  {args.sites:>3} sites at once:       {n:>7} rows  {rate:8.0f} rows/s accepted  "
              f"platform CPU {cpu:.3f} s per 1,000 rows")
        since = datetime.now(timezone.utc)
        await steady(others, args.rate, args.seconds)
        found = await lags(service, since)
        print(f"  steady state: {len(found)} rows, upload lag p50 {pct(found, 50):.2f} s  p99 {pct(found, 99):.2f} s "
              f"(site tick 1 s; HJ 1321 limit {300} s)")
        took, count = await report_time(service, admin)
        print(f"  clean-transport report, 24 months, all sites: {took * 1000:.0f} ms ({count} enterprises)")
        for site in sites:
            await site.adapter.close()
    finally:
        await asyncio.to_thread(service.close)
        import shutil

        shutil.rmtree(key_root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    asyncio.run(main(parser.parse_args()))
