"""Assemble report answers: registry + roll-ups + non-road volumes (store) → figures (compute).

Shared by the HTTP routes and the benchmark, so the benchmark times exactly what the endpoint does.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Any

from gate_service.reports import compute, store


async def reports(
    conn: store.Conn,
    target_for: compute.TargetLookup,
    first: date,
    last: date,
    *,
    now: datetime,
    enterprise_id: str | None = None,
    county: str | None = None,
    zone_id: str | None = None,
    industry: str | None = None,
    source: store.Source = "monthly",
    with_months: bool = True,
) -> list[dict[str, Any]]:
    """One report per enterprise that matches the filters (every enterprise when none is given); without the
    per-month rows when ``with_months`` is false."""
    # Hundreds of enterprises share a few (industry, county, month) keys; ask the policy once for each.
    target_for = functools.lru_cache(maxsize=None)(target_for)
    firms = await store.enterprises(conn, enterprise_id=enterprise_id, county=county, zone_id=zone_id,
                                    industry=industry)
    if not firms:
        return []
    # With a single enterprise the sums are restricted in SQL; otherwise one pass over the whole city.
    only = firms[0]["id"] if len(firms) == 1 else None
    volumes = await store.volumes_by_month(conn, first, last, only)
    if not with_months:
        # The period's sums straight from SQL: 500 rows, not 12,000 months added up in Python.
        totals = await store.road_totals(conn, first, last, only, source=source)
        return [compute.enterprise_report(e, first, last, totals.get(e["id"], compute.NO_ROAD),
                                          volumes.get(e["id"], {}), target_for, now, with_months=False)
                for e in firms]
    road = await store.road_by_month(conn, first, last, only, source=source)
    return [
        compute.enterprise_report(e, first, last, road.get(e["id"], {}), volumes.get(e["id"], {}), target_for, now)
        for e in firms
    ]
