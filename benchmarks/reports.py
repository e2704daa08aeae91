"""Benchmark: clean-transport reports from the monthly and daily roll-ups vs the same query over raw passages.

    .venv/bin/python benchmarks/reports.py [--passages N] [--enterprises 500] [--runs 5] [--keep]

Builds a synthetic ledger of N passages (default 5,000,000) over 24 months (2024-01..2025-12, Asia/Shanghai) for
500 enterprises (2 gates each, plus city checkpoints) in a fresh database: an embedded PostgreSQL (pgserver) in a
temp dir, or a new database on the server of ``DATABASE_URL``. Then it times, warm, the one-enterprise report and
the city-wide report over the 24 months, through ``gate_service.reports.service.reports`` — the code the endpoint
runs — with the monthly roll-ups (what the endpoint uses: whole months from ``transport_monthly``, partial edge
months from ``transport_daily``), with the daily roll-ups only, and with ``source="raw"`` (the same sums over
passages); checks all three give the same answer, and prints the medians and the ratios. A fourth line times the
city-wide table over a period with partial months at both ends (2024-01-16 .. 2025-12-15), the monthly path's
mixed case.

How the ledger is made, and what that means:
- Rows are generated inside PostgreSQL (``INSERT ... SELECT`` over ``generate_series``), one statement per month.
  That is faster than COPY from Python (no row ever crosses the socket) and each statement fires the roll-up
  trigger once, so the roll-ups are built by the same trigger the service relies on, in bulk, as an import would.
- ``prev_hash`` / ``hash`` are a fixed placeholder: the hash chain is not what is measured here, and
  ``gate-service ledger verify`` would (rightly) reject this database.
- Afterwards ``rebuild_transport_daily`` and ``rebuild_transport_monthly`` recompute all 24 months from raw
  passages (timed) and the results are compared with what the triggers built.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timezone
from datetime import time as dtime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gate_service.db.connect import _init_connection  # noqa: E402
from gate_service.db.migrate import apply_migrations  # noqa: E402
from gate_service.policy import default_policy_set  # noqa: E402
from gate_service.policy.model import SHANGHAI  # noqa: E402
from gate_service.reports import service  # noqa: E402
from gate_service.reports.compute import months_between  # noqa: E402

FIRST, LAST = date(2024, 1, 1), date(2025, 12, 31)
INDUSTRIES = ("steel", "foundry_iron", "cement", "coking", "coal", "non_ferrous", "carbon", "other")
FEN_COUNTIES = ("尧都区", "洪洞县", "襄汾县", "曲沃县", "侯马市", "霍州市")
OTHER_COUNTIES = ("翼城县", "古县", "安泽县", "浮山县", "吉县", "乡宁县", "蒲县")
ZONES = ("linfen-edz", "hongtong", "xiangfen", "quwo", "houma", "huozhou", "yaodu-hitech", "city", "other")

# One month of synthetic passages. $1 first local day, $2 next month's first local day, $3/$4 the range of
# generate_series (also used as gate_seq: increasing per gate, which is all that is needed here), $5 enterprises.
# The inner SELECT draws the random numbers once per row; OFFSET 0 stops the planner from inlining it (and so
# re-drawing random() in each place it is used).
_MONTH_SQL = """
INSERT INTO passages (id, at, recorded_at, gate_id, gate_seq, enterprise_id, zone_id, direction, plate, source,
                      registered, emission_stage, fuel_type, vehicle_class, tonnes, decision, rules, policy_id,
                      clean, prev_hash, hash)
SELECT gen_random_uuid(), s.at, s.at, s.gate_id, s.i, s.enterprise_id, s.zone_id,
       CASE WHEN s.r_dir < 0.5 THEN 'in' ELSE 'out' END,
       '晋L' || lpad((s.i % 99999)::text, 5, '0'),
       'camera', true, CASE WHEN s.clean THEN NULL ELSE 5 END,
       CASE WHEN s.clean THEN 'electric' ELSE 'diesel' END, 'heavy_truck',
       CASE WHEN s.r_t < 0.85 THEN round((15 + s.r_t * 25)::numeric, 1) END,
       CASE WHEN s.r_deny < 0.05 THEN 'deny' ELSE 'allow' END,
       CASE WHEN s.r_deny < 0.05 THEN ARRAY['retired-guo3-diesel-truck'] ELSE '{}' END,
       'linfen-2024-25', s.clean, '\\x00'::bytea, '\\x00'::bytea
FROM (
    SELECT i, at, gate_id, enterprise_id, zone_id, r_dir, r_t, r_deny,
           -- Each enterprise has its own clean share, rising over the two years.
           r_clean < (0.15 + 0.6 * ((e * 37) % 100) / 100.0) * (0.5 + 0.5 * progress) AS clean
    FROM (
        SELECT i, e,
               $1::timestamptz + random() * ($2::timestamptz - $1::timestamptz) AS at,
               CASE WHEN e < 0 THEN 'city-' || (i % 20) ELSE 'g' || e || '-' || (i % 2) END AS gate_id,
               CASE WHEN e < 0 THEN NULL ELSE 'e' || lpad(e::text, 4, '0') END AS enterprise_id,
               CASE WHEN e < 0 THEN 'city' ELSE 'other' END AS zone_id,
               random() AS r_dir, random() AS r_t, random() AS r_deny, random() AS r_clean,
               extract(epoch FROM $1::timestamptz - '2024-01-01T00:00:00+08'::timestamptz) / (730 * 86400.0)
                   AS progress
        FROM (
            -- 3% city checkpoints (no enterprise); the rest skewed: big works move more than small ones.
            SELECT i, CASE WHEN random() < 0.03 THEN -1 ELSE floor(power(random(), 1.6) * $5)::int END AS e
            FROM generate_series($3::bigint, $4::bigint) AS i
            OFFSET 0
        ) picked
        OFFSET 0
    ) drawn
    OFFSET 0
) s
"""


def _with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


async def _timed(fn: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, Any]:
    await fn()  # warm-up: both sides are measured with the data in cache
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = await fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


async def build(conn: asyncpg.Connection, n: int, enterprises: int) -> None:
    await apply_migrations(conn)
    rows = []
    for e in range(enterprises):
        industry = INDUSTRIES[e % len(INDUSTRIES)]
        county = FEN_COUNTIES[e % 6] if e % 3 else OTHER_COUNTIES[e % 7]
        rows.append((f"e{e:04d}", f"企业{e:04d}", industry, county, ZONES[e % len(ZONES)]))
    await conn.executemany("INSERT INTO enterprises (id, name, industry, county, zone_id) VALUES ($1,$2,$3,$4,$5)",
                           rows)
    await conn.executemany("INSERT INTO gates (id, name, enterprise_id, zone_id) VALUES ($1, $1, $2, 'other')",
                           [(f"g{e}-{k}", f"e{e:04d}") for e in range(enterprises) for k in range(2)])
    await conn.executemany("INSERT INTO gates (id, name, zone_id) VALUES ($1, $1, 'city')",
                           [(f"city-{k}",) for k in range(20)])
    # UTC partitions: local January 2024 starts on 2023-12-31 16:00 UTC.
    for m in [date(2023, 12, 1), *months_between(FIRST, LAST)]:
        await conn.execute("SELECT ensure_passage_partition($1)", m)
    months = months_between(FIRST, LAST)
    per_month = n // len(months)
    start = time.perf_counter()
    lo = 1
    for k, m in enumerate(months):
        nxt = months[k + 1] if k + 1 < len(months) else date(2026, 1, 1)
        count = per_month + (n - per_month * len(months) if k == len(months) - 1 else 0)
        await conn.execute(_MONTH_SQL, datetime.combine(m, dtime.min, SHANGHAI),
                           datetime.combine(nxt, dtime.min, SHANGHAI), lo, lo + count - 1, enterprises)
        lo += count
        done = lo - 1
        rate = done / (time.perf_counter() - start)
        print(f"\r  {m:%Y-%m}: {done:,} passages ({rate:,.0f}/s)", end="", flush=True)
    print()
    await conn.execute("ANALYZE")


async def main_async(args: argparse.Namespace) -> None:
    external = os.environ.get("DATABASE_URL")
    tmp = None
    if external:
        server_dsn = external
    else:
        from gate_service.db.embedded import start_embedded

        tmp = tempfile.mkdtemp(prefix="cgbench-", dir="/tmp")  # short: the Unix socket path lives inside
        server_dsn = start_embedded(Path(tmp))
    name = f"cleangate_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(_with_database(server_dsn, name))
    await _init_connection(conn)
    try:
        print(f"PostgreSQL {conn.get_server_version().major}, database {name}"
              f" ({'DATABASE_URL' if external else 'embedded, ' + str(tmp)})")
        print(f"building {args.passages:,} passages, 24 months, {args.enterprises} enterprises ...")
        t = time.perf_counter()
        await build(conn, args.passages, args.enterprises)
        load_s = time.perf_counter() - t
        total = await conn.fetchval("SELECT count(*) FROM passages")
        daily = await conn.fetchval("SELECT count(*) FROM transport_daily")
        monthly = await conn.fetchval("SELECT count(*) FROM transport_monthly")
        size = await conn.fetchval("SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c "
                                   "JOIN pg_inherits i ON i.inhrelid = c.oid WHERE i.inhparent = 'passages'::regclass")
        print(f"loaded {total:,} passages ({size} with indexes) in {load_s:.1f} s, roll-ups built by the trigger: "
              f"{daily:,} enterprise-days, {monthly:,} enterprise-months")

        # The trigger's roll-ups must equal a recomputation from raw passages.
        t = time.perf_counter()
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE trigger_built ON COMMIT DROP AS SELECT * FROM transport_daily")
            written = await conn.fetchval("SELECT rebuild_transport_daily($1, $2)", FIRST, LAST)
            rebuild_s = time.perf_counter() - t
            diff = await conn.fetchval(
                """SELECT count(*) FROM ((SELECT * FROM trigger_built EXCEPT SELECT * FROM transport_daily)
                   UNION ALL (SELECT * FROM transport_daily EXCEPT SELECT * FROM trigger_built)) d""")
        print(f"rebuild_transport_daily over 24 months: {written:,} rows in {rebuild_s:.1f} s; "
              f"rows differing from the trigger's: {diff}")
        if diff:
            raise SystemExit("roll-ups built by the trigger differ from the raw recomputation")
        t = time.perf_counter()
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE trigger_built_m ON COMMIT DROP AS SELECT * FROM transport_monthly")
            written = await conn.fetchval("SELECT rebuild_transport_monthly($1, $2)", FIRST, LAST)
            rebuild_s = time.perf_counter() - t
            diff = await conn.fetchval(
                """SELECT count(*) FROM ((SELECT * FROM trigger_built_m EXCEPT SELECT * FROM transport_monthly)
                   UNION ALL (SELECT * FROM transport_monthly EXCEPT SELECT * FROM trigger_built_m)) d""")
        print(f"rebuild_transport_monthly over 24 months: {written:,} rows in {rebuild_s:.1f} s; "
              f"rows differing from the trigger's: {diff}")
        if diff:
            raise SystemExit("monthly roll-ups built by the trigger differ from the raw recomputation")
        await conn.execute("ANALYZE transport_daily")
        await conn.execute("ANALYZE transport_monthly")

        target_for = default_policy_set().target_for
        now = datetime(2025, 12, 31, 12, tzinfo=timezone.utc)
        # The busiest enterprise: the worst case for the raw one-enterprise query.
        busiest = await conn.fetchval(
            "SELECT enterprise_id FROM transport_daily GROUP BY 1 ORDER BY sum(trips) DESC LIMIT 1")
        trips_of_busiest = await conn.fetchval(
            "SELECT count(*) FROM passages WHERE enterprise_id = $1", busiest)

        def one(source: str) -> Callable[[], Awaitable[Any]]:
            return lambda: service.reports(conn, target_for, FIRST, LAST, now=now, enterprise_id=busiest,
                                           source=source)  # type: ignore[arg-type]

        def city(source: str) -> Callable[[], Awaitable[Any]]:
            return lambda: service.reports(conn, target_for, FIRST, LAST, now=now,
                                           source=source)  # type: ignore[arg-type]

        def table(source: str) -> Callable[[], Awaitable[Any]]:
            # The bureau's city-wide table as the endpoint serves it by default: no per-month rows.
            return lambda: service.reports(conn, target_for, FIRST, LAST, now=now, source=source,  # type: ignore[arg-type]
                                           with_months=False)

        def edges(source: str) -> Callable[[], Awaitable[Any]]:
            return lambda: service.reports(conn, target_for, date(2024, 1, 16), date(2025, 12, 15), now=now,
                                           source=source, with_months=False)  # type: ignore[arg-type]

        results = []
        slow_runs = max(3, args.runs // 2)
        for label, make in ((f"one enterprise ({busiest}, {trips_of_busiest:,} passages)", one),
                            (f"city-wide, with months ({args.enterprises} enterprises)", city),
                            (f"city-wide table, no months ({args.enterprises})", table),
                            ("city-wide table, 01-16 .. 12-15 (partial months)", edges)):
            monthly_ms, monthly = await _timed(make("monthly"), args.runs)
            daily_ms, daily = await _timed(make("daily"), args.runs)
            raw_ms, raw = await _timed(make("raw"), args.runs if make is one else slow_runs)
            if not (monthly == daily == raw):
                raise SystemExit(f"{label}: monthly, daily and raw answers differ")
            results.append((label, raw_ms, daily_ms, monthly_ms))

        print()
        # A shared machine: the load says how much of a figure is waiting for a core.
        load = os.getloadavg()
        print(f"report over {FIRST} .. {LAST} (median of warm runs; monthly, daily and raw answers identical; "
              f"load average {load[0]:.1f} on {os.cpu_count()} cores)")
        print(f"{'report':<52} {'raw ms':>9} {'daily ms':>9} {'monthly ms':>11} {'raw/monthly':>12}")
        for label, raw_ms, daily_ms, monthly_ms in results:
            print(f"{label:<52} {raw_ms:>9.1f} {daily_ms:>9.1f} {monthly_ms:>11.1f} {raw_ms / monthly_ms:>11.0f}x")
    finally:
        await conn.close()
        if not args.keep:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            print(f"kept database {name}")
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=5_000_000)
    parser.add_argument("--enterprises", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
