"""Benchmark: does a gate notice a big export or a hostile import? (issue 15 item 3)

    .venv/bin/python benchmarks/exports_load.py [--rows 300000] [--idle-seconds 20]

One real `gate-service serve` (benchmarks/_service.py) with an embedded PostgreSQL. A ledger of ``--rows``
passages is made inside PostgreSQL (benchmarks/_fixtures.py, generate_series) at one gate; a kiosk at another
gate then posts passages one after another (a guard's manual entries: decide + hash chain + commit) and the
latency of each answer is recorded:

1. idle: nothing else running, ``--idle-seconds``;
2. loaded: while, at once, the whole ledger is exported as CSV and as XLSX (the XLSX cap is raised to
   ``--rows`` for this run, so the workbook really is built) and a zip-bomb XLSX (a few hundred KB that inflates
   to 300 MiB) is posted to the registry and blacklist imports over and over, until both exports are done.

The exports and bombs are sent by separate client processes at the lowest CPU priority (they stand for other
machines), so the measuring client's own loop only times the gate. An idle phase after the load shows how much
the machine itself drifted meanwhile (on a shared machine, a lot). Printed: p50/p95/p99/max of both phases, p99 loaded / p99 idle (target ≤ 1.5), export durations
and sizes, bomb answers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._fixtures import seed_ledger, zip_bomb  # noqa: E402
from benchmarks._service import Service  # noqa: E402

# A client process: GET (download to nowhere) or POST a file; prints "status bytes seconds" per request.
# POST repeats (every 0.5 s) until its stdin closes: one process for all the bombs, not one per bomb.
_CLIENT = r"""
import select, sys, time, urllib.request, urllib.error
method, url, token = sys.argv[1:4]
data = open(sys.argv[4], "rb").read() if method == "POST" else None
while True:
    req = urllib.request.Request(url, data=data, method=method, headers={"Authorization": "Bearer " + token,
        "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
    start, size = time.perf_counter(), 0
    try:
        with urllib.request.urlopen(req, timeout=3600) as resp:
            status = resp.status
            while chunk := resp.read(1 << 16):
                size += len(chunk)
    except urllib.error.HTTPError as exc:
        status, size = exc.code, len(exc.read())
    print(status, size, round(time.perf_counter() - start, 2), flush=True)
    if method != "POST" or select.select([sys.stdin], [], [], 0.5)[0]:
        break
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def gate_loop(session: aiohttp.ClientSession, url: str, token: str, stop: asyncio.Event,
                    seconds: float | None = None) -> list[float]:
    times: list[float] = []
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}"}
    while not stop.is_set() and (seconds is None or time.perf_counter() - started < seconds):
        t0 = time.perf_counter()
        async with session.post(url, json={"plate": "晋L12345D", "direction": "in"}, headers=headers) as resp:
            await resp.read()
            assert resp.status in (200, 201), resp.status
        times.append((time.perf_counter() - t0) * 1000)
        if times[-1] > 2000:
            print(f"slow gate answer: {times[-1]:.0f} ms, {t0 - started:.1f} s into the phase", flush=True)
    return times


async def lock_waits(service: Service, stop: asyncio.Event) -> dict[tuple[str, str], int]:
    """Sessions waiting on a lock, sampled every 0.2 s during the load (a gate stuck behind the export would
    show here)."""
    import asyncpg

    from gate_service.db.embedded import embedded_server

    seen: dict[tuple[str, str], int] = {}
    conn = await asyncpg.connect(embedded_server(service.data_dir, cleanup_mode=None).get_uri())
    try:
        while not stop.is_set():
            for r in await conn.fetch("SELECT query, wait_event FROM pg_stat_activity WHERE wait_event_type = 'Lock'"):
                key = (" ".join(r["query"].split()), r["wait_event"])
                seen[key] = seen.get(key, 0) + 1
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return seen


async def run(service: Service, admin: str, kiosk: str, rows: int, idle_seconds: float, bomb: Path,
              load: set[str]) -> None:
    gate_url = f"{service.url}/api/v1/gates/g-gate/passages"
    async with aiohttp.ClientSession() as session:
        for _ in range(20):  # warm-up
            await gate_loop(session, gate_url, kiosk, asyncio.Event(), seconds=0.05)
        idle = await gate_loop(session, gate_url, kiosk, asyncio.Event(), seconds=idle_seconds)

        def client(method: str, path: str, *extra: str) -> subprocess.Popen:
            # The downloading and bombing clients stand for other machines: at the lowest priority here, so their
            # own CPU (reading 75 MiB, posting bombs) is not counted against the service under test.
            return subprocess.Popen([sys.executable, "-c", _CLIENT, method, service.url + path, admin, *extra],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                    preexec_fn=lambda: os.nice(19))

        stop = asyncio.Event()
        started = time.perf_counter()
        exports = {f: client("GET", f"/api/v1/passages?format={f}") for f in ("csv", "xlsx") if f in load}
        bombers = [client("POST", path, str(bomb)) for path in ("/api/v1/vehicles/import", "/api/v1/blacklist/import")
                   if "bomb" in load]

        async def wait_exports() -> dict[str, str]:
            results = {}
            for name, proc in exports.items():
                out, _ = await asyncio.to_thread(proc.communicate)
                results[name] = out.strip()
            if not exports:
                await asyncio.sleep(idle_seconds)
            stop.set()
            return results

        loaded_task = asyncio.create_task(gate_loop(session, gate_url, kiosk, stop))
        waits_task = asyncio.create_task(lock_waits(service, stop))
        results = await wait_exports()
        loaded = await loaded_task
        waits = await waits_task
        wall = time.perf_counter() - started
        bombs: list[str] = []
        for proc in bombers:
            out, _ = await asyncio.to_thread(proc.communicate, "stop\n")
            bombs += [line.split()[0] for line in out.splitlines()]
        after = await gate_loop(session, gate_url, kiosk, asyncio.Event(), seconds=idle_seconds)

    print(f"ledger: {rows} rows; gate decisions posted one after another by a kiosk at another gate")
    print(f"\n{'phase':<8} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in (("idle", idle), ("loaded", loaded), ("after", after)):
        print(f"{name:<8} {len(values):>6} {statistics.median(values):>8.1f} {pct(values, 0.95):>8.1f} "
              f"{pct(values, 0.99):>8.1f} {max(values):>8.1f}")
    print(f"\np99 loaded / p99 idle before = {pct(loaded, 0.99) / pct(idle, 0.99):.2f}, / p99 idle after = "
          f"{pct(loaded, 0.99) / pct(after, 0.99):.2f} (target <= 1.5)")
    for name, line in results.items():
        status, size, seconds = line.split()
        print(f"{name} export: HTTP {status}, {int(size) / 2**20:.1f} MiB in {seconds} s")
    if bombs:
        print(f"zip bomb imports (300 MiB inflated, {bomb.stat().st_size // 1024} KiB sent): {len(bombs)} posted, "
              f"answers {sorted(set(bombs))}")
    for (query, event), n in sorted(waits.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  a session waited on a lock ({event}) in {n} samples: {query[:100]}")
    print(f"loaded phase {wall:.1f} s; 'after' is idle again, measured last: the machine's own drift")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--idle-seconds", type=float, default=20)
    parser.add_argument("--load", default="csv,xlsx,bomb", help="what runs in the loaded phase (for diagnosis)")
    args = parser.parse_args()
    service = Service(env={"CLEANGATE_EXPORT_XLSX_MAX_ROWS": str(args.rows + 100_000),
                           "CLEANGATE_RATE_LIMITS": "off"})
    try:
        service.start()
        admin = service.cli("token", "create", "--role", "admin")

        async def setup() -> None:
            import asyncpg

            from gate_service.db.embedded import embedded_server

            headers = {"Authorization": f"Bearer {admin}"}
            async with aiohttp.ClientSession() as session:
                for path, body in (
                    ("/api/v1/enterprises/e-big", {"name": "大型钢铁企业", "industry": "steel", "county": "襄汾县",
                                                  "zone_id": "xiangfen", "retrofit_completed_on": "2024-06-01",
                                                  "grade": "A"}),
                    ("/api/v1/gates/g-big", {"name": "东门", "enterprise_id": "e-big", "zone_id": "xiangfen"}),
                    ("/api/v1/gates/g-gate", {"name": "西门", "enterprise_id": "e-big", "zone_id": "xiangfen"}),
                    ("/api/v1/vehicles/晋L12345D", {"plate_color": "yellow-green", "fuel_type": "electric",
                                                    "vehicle_class": "heavy_truck"}),
                ):
                    async with session.put(service.url + path, json=body, headers=headers) as resp:
                        assert resp.status in (200, 201), await resp.text()
            conn = await asyncpg.connect(embedded_server(service.data_dir, cleanup_mode=None).get_uri())
            try:
                started = time.perf_counter()
                # Recent months: inside the 24 months retention keeps, so its nightly job leaves them alone.
                await seed_ledger(conn, "g-big", "e-big", args.rows, start="2026-06-01T00:00:00+08:00")
                await conn.execute("VACUUM ANALYZE passages")
                print(f"seeded {args.rows} passages in {time.perf_counter() - started:.1f} s")
            finally:
                await conn.close()

        asyncio.run(setup())
        kiosk = service.cli("token", "create", "--role", "kiosk", "--gate", "g-gate")
        bomb = service.data_dir / "bomb.xlsx"
        bomb.write_bytes(zip_bomb(300))
        asyncio.run(run(service, admin, kiosk, args.rows, args.idle_seconds, bomb, set(args.load.split(","))))
    finally:
        service.close()


if __name__ == "__main__":
    main()
