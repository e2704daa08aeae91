"""SQL for clean-transport reports: non-road volumes, and month sums of the roll-ups.

``source="monthly"`` (what the endpoints use) reads whole months from ``transport_monthly`` and sums only the
partial months at the period's edges from ``transport_daily``. ``source="daily"`` sums every day from
``transport_daily`` and ``source="raw"`` runs the same sums over raw passages (the definition both roll-ups are
built from); only tests and the benchmark use those two, to check and to compare.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import asyncpg

from gate_service.reports.compute import RoadCounts, Volumes, month_end, month_start, months_between

Conn = asyncpg.Connection | asyncpg.Pool
Source = Literal["monthly", "daily", "raw"]

VOLUME_COLUMNS = ("rail_tonnes", "waterway_tonnes", "pipeline_tonnes", "conveyor_tonnes")

_MONTHS_DAILY = """
    SELECT enterprise_id, month_of(day) AS month,
           sum(trips)::bigint AS trips, sum(clean_trips)::bigint AS clean_trips,
           sum(tonnes) AS tonnes, sum(clean_tonnes) AS clean_tonnes
    FROM transport_daily
    WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL OR enterprise_id = $3)
    GROUP BY 1, 2
"""

# Whole months from the monthly roll-up.
_MONTHS_MONTHLY = """
    SELECT enterprise_id, month, trips::bigint, clean_trips::bigint, tonnes, clean_tonnes
    FROM transport_monthly
    WHERE month BETWEEN $1 AND $2 AND ($3::text IS NULL OR enterprise_id = $3)
"""

# The same, from the ledger itself. The enterprise filter sits on passages (passages_enterprise_at_idx) so the
# one-enterprise raw query is as good as a raw query can be, not a city scan filtered afterwards.
_MONTHS_RAW = """
    SELECT p.enterprise_id, month_of(shanghai_day(p.at)) AS month,
           count(*) FILTER (WHERE p.direction = 'in') AS trips,
           count(*) FILTER (WHERE p.direction = 'in' AND p.clean) AS clean_trips,
           coalesce(sum(p.tonnes), 0) AS tonnes,
           coalesce(sum(p.tonnes) FILTER (WHERE p.clean), 0) AS clean_tonnes
    FROM passages p
    WHERE p.at >= ($1::date::timestamp - interval '8 hours') AT TIME ZONE 'UTC'
      AND p.at < (($2::date + 1)::timestamp - interval '8 hours') AT TIME ZONE 'UTC'
      AND ($3::text IS NULL OR p.enterprise_id = $3)
      AND p.enterprise_id IS NOT NULL AND p.decision = 'allow'
      AND (p.overrides IS NULL OR passage_counts(p.decision, p.overrides, p.gate_id, p.gate_seq, p.chain_epoch))
    GROUP BY 1, 2
"""


def split_period(first: date, last: date) -> tuple[date, date, tuple[date, date] | None, tuple[date, date] | None]:
    """(first whole month, last whole month, head days, tail days) of local days first..last.

    The whole months may be an empty range (first > last); head/tail are the partial months' days, or None."""
    months = months_between(first, last)
    whole = [m for m in months if m >= first and month_end(m) <= last]
    partial = [(max(m, first), min(month_end(m), last)) for m in months if m not in whole]
    lo, hi = (whole[0], whole[-1]) if whole else (date.max, date.min)
    head = partial[0] if partial else None
    tail = partial[1] if len(partial) > 1 else None
    return lo, hi, head, tail


def _per_enterprise(month_sql: str) -> str:
    # The period's totals are the sums of its month rows: the same statement, summed in the server, so the
    # table without months is the table with months, minus 12,000 rows through the socket and Python.
    return f"""SELECT enterprise_id, NULL::date, sum(trips)::bigint, sum(clean_trips)::bigint, sum(tonnes),
                      sum(clean_tonnes) FROM ({month_sql}) m GROUP BY 1"""


_TOTALS = {sql: _per_enterprise(sql) for sql in (_MONTHS_DAILY, _MONTHS_MONTHLY, _MONTHS_RAW)}


async def _road_rows(conn: Conn, first: date, last: date, enterprise_id: str | None, source: Source,
                     by_month: bool) -> list[asyncpg.Record]:
    def sql(month_sql: str) -> str:
        return month_sql if by_month else _TOTALS[month_sql]

    if source != "monthly":
        return await conn.fetch(sql(_MONTHS_RAW if source == "raw" else _MONTHS_DAILY), first, last, enterprise_id)
    # Separate statements, not one UNION with NULL ranges: a generic plan of that scanned all of transport_daily
    # for edges that were not there.
    lo, hi, head, tail = split_period(first, last)
    rows = list(await conn.fetch(sql(_MONTHS_MONTHLY), lo, hi, enterprise_id)) if lo <= hi else []
    for edge in (head, tail):
        if edge is not None:
            rows += await conn.fetch(sql(_MONTHS_DAILY), edge[0], edge[1], enterprise_id)
    return rows


async def road_by_month(
    conn: Conn, first: date, last: date, enterprise_id: str | None = None, *, source: Source = "monthly"
) -> dict[str, dict[date, RoadCounts]]:
    """{enterprise_id: {first day of month: counts over the period's days in that month}}."""
    out: dict[str, dict[date, RoadCounts]] = defaultdict(dict)
    for r in await _road_rows(conn, first, last, enterprise_id, source, True):
        # A tuple per row rather than r["..."]: 12,000 rows for a city's two years, each lookup counts.
        eid, month, trips, clean_trips, tonnes_, clean_tonnes = r
        out[eid][month] = RoadCounts(int(trips), int(clean_trips), tonnes_, clean_tonnes)
    return out


async def road_totals(
    conn: Conn, first: date, last: date, enterprise_id: str | None = None, *, source: Source = "monthly"
) -> dict[str, RoadCounts]:
    """{enterprise_id: counts over the whole period}: the sums of ``road_by_month``."""
    out: dict[str, RoadCounts] = {}
    for eid, _, trips, clean_trips, tonnes_, clean_tonnes in await _road_rows(conn, first, last, enterprise_id,
                                                                              source, False):
        counts = RoadCounts(int(trips), int(clean_trips), tonnes_, clean_tonnes)
        out[eid] = out[eid] + counts if eid in out else counts
    return out


async def volumes_by_month(
    conn: Conn, first: date, last: date, enterprise_id: str | None = None
) -> dict[str, dict[date, Volumes]]:
    rows = await conn.fetch(
        f"""SELECT enterprise_id, month, {', '.join(VOLUME_COLUMNS)} FROM transport_volumes
            WHERE month BETWEEN $1 AND $2 AND ($3::text IS NULL OR enterprise_id = $3)""",
        month_start(first), month_start(last), enterprise_id,
    )
    out: dict[str, dict[date, Volumes]] = defaultdict(dict)
    for r in rows:
        out[r["enterprise_id"]][r["month"]] = Volumes(*(Decimal(r[c]) for c in VOLUME_COLUMNS))
    return out


async def enterprises(
    conn: Conn, *, enterprise_id: str | None = None, county: str | None = None, zone_id: str | None = None,
    industry: str | None = None,
) -> list[dict[str, Any]]:
    """Enterprises as the registry knows them now (a report groups by today's industry, county and zone)."""
    rows = await conn.fetch(
        """SELECT id, name, industry, county, zone_id FROM enterprises
           WHERE ($1::text IS NULL OR id = $1) AND ($2::text IS NULL OR county = $2)
             AND ($3::text IS NULL OR zone_id = $3) AND ($4::text IS NULL OR industry = $4)
           ORDER BY id""",
        enterprise_id, county, zone_id, industry,
    )
    return [dict(r) for r in rows]


async def put_volumes(
    conn: asyncpg.Connection, enterprise_id: str, month: date, values: dict[str, Any], *, note: str | None,
    actor: str, role: str, token_id: int | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Replace one month's non-road tonnes; return (new row, previous row or None)."""
    previous = await conn.fetchrow(
        "SELECT * FROM transport_volumes WHERE enterprise_id = $1 AND month = $2 FOR UPDATE", enterprise_id, month)
    row = await conn.fetchrow(
        f"""INSERT INTO transport_volumes (enterprise_id, month, {', '.join(VOLUME_COLUMNS)}, note,
                                           reported_by, reported_role, reported_token_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (enterprise_id, month) DO UPDATE SET
                rail_tonnes = EXCLUDED.rail_tonnes, waterway_tonnes = EXCLUDED.waterway_tonnes,
                pipeline_tonnes = EXCLUDED.pipeline_tonnes, conveyor_tonnes = EXCLUDED.conveyor_tonnes,
                note = EXCLUDED.note, reported_by = EXCLUDED.reported_by, reported_role = EXCLUDED.reported_role,
                reported_token_id = EXCLUDED.reported_token_id, updated_at = now()
            RETURNING *""",
        enterprise_id, month, *(values[c] for c in VOLUME_COLUMNS), note, actor, role, token_id,
    )
    return dict(row), (dict(previous) if previous else None)


async def list_volumes(
    conn: Conn, enterprise_id: str, first_month: date | None = None, last_month: date | None = None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT * FROM transport_volumes WHERE enterprise_id = $1
             AND ($2::date IS NULL OR month >= $2) AND ($3::date IS NULL OR month <= $3)
           ORDER BY month""",
        enterprise_id, first_month, last_month,
    )
    return [dict(r) for r in rows]


async def rebuild(conn: Conn, first: date, last: date) -> int:
    """Recompute the roll-ups of local days first..last from raw passages (repair): the daily rows of those
    days and the monthly rows of the whole months they touch. Returns the daily rows written."""
    written = await conn.fetchval("SELECT rebuild_transport_daily($1, $2)", first, last)
    await conn.fetchval("SELECT rebuild_transport_monthly($1, $2)", month_start(first), month_start(last))
    return written
