"""Assemble the workbench's answers: store (SQL) → pure computation. Shared by the routes and the packet."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any

from gate_service.inspection import anomalies as rules
from gate_service.inspection import compare, store
from gate_service.inspection import days as d
from gate_service.policy.model import period_bounds
from gate_service.reports.compute import month_start


async def days_of_alert(conn: store.Conn, alert_id: int, max_days: int) -> tuple[dict[str, Any] | None, list[date]]:
    """The alert and its local days; at most ``max_days + 1`` of them (enough to say it is too long)."""
    alert = await store.alert(conn, alert_id)
    if alert is None:
        return None, []
    first = compare.local_days(alert["starts_at"], alert["starts_at"] + timedelta(microseconds=1))[:1]
    if not first or first[0] > date.max - timedelta(days=max_days):
        return alert, compare.local_days(alert["starts_at"], alert["ends_at"])
    return alert, compare.local_days(alert["starts_at"], alert["ends_at"], last=first[0] + timedelta(days=max_days))


async def alert_days_between(conn: store.Conn, first: date, last: date) -> list[date]:
    """The local days of first..last with an orange or red alert in force at some moment."""
    start, end = period_bounds(first, last)
    return sorted(compare.alert_days(await store.alerts_between(conn, start, end), first, last,
                                     compare.ALERT_DAY_LEVELS))


async def comparison(conn: store.Conn, enterprise: dict[str, Any], days: list[date], now: datetime
                     ) -> dict[str, Any]:
    wanted = sorted(set(days))
    gates = await store.gates(conn, enterprise["id"])
    if not wanted:
        return compare.comparison(enterprise, [], gates=gates, gate_days=[], alerts=[], heavy=[], overrides=[],
                                  segments=[], video_gates=set(), now=now)
    window_first = wanted[0] - timedelta(days=d.LOOKBACK_DAYS)
    start, end = period_bounds(window_first, wanted[-1])
    alerts = await store.alerts_between(conn, start, end)
    gate_days = await store.gate_days(conn, enterprise["id"], window_first, wanted[-1])
    heavy = await store.heavy_low_stage_admitted(conn, enterprise["id"], compare.alert_spans(alerts, wanted))
    overrides: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    for day in wanted:
        lo, hi = compare.day_bounds(day)
        overrides += await store.overrides(conn, enterprise["id"], lo, hi)
        segments += await store.video_segments(conn, enterprise["id"], [g["id"] for g in gates], lo, hi)
    # A gate "records video" if it recorded any in the window: only there is a missing stretch a gap.
    video_gates = await store.gates_with_video(conn, enterprise["id"], [g["id"] for g in gates], start, end)
    return await asyncio.to_thread(
        compare.comparison, enterprise, wanted, gates=gates, gate_days=gate_days, alerts=alerts, heavy=heavy,
        overrides=overrides, segments=segments, video_gates=video_gates, now=now)


async def anomalies(conn: store.Conn, first: date, last: date, now: datetime,
                    enterprise_id: str | None = None) -> dict[str, Any]:
    """The anomaly list over local days first..last (city-wide, or one enterprise)."""
    firms = await store.enterprises(conn, enterprise_id)
    window_first = first - timedelta(days=d.LOOKBACK_DAYS)
    start, end = period_bounds(window_first, last)
    alerts = await store.alerts_between(conn, start, end)
    enterprise_days = [r for r in await store.enterprise_days(conn, window_first, last)
                       if enterprise_id is None or r[0] == enterprise_id]
    prev_month = month_start(month_start(first) - timedelta(days=1))
    months = [r for r in await store.months(conn, prev_month, month_start(last))
              if enterprise_id is None or r[0] == enterprise_id]
    volumes = await store.rail_conveyor(conn, prev_month, month_start(last))
    gates = await store.gates(conn, enterprise_id)
    p_start, p_end = period_bounds(first, last)
    until = min(p_end, now)
    activity = await store.gate_activity(conn, [g["id"] for g in gates],
                                         until - timedelta(days=rules.GATE_ACTIVE_WINDOW_DAYS), until)
    gaps = await store.seq_gaps(conn, p_start, p_end, enterprise_id)
    # City-wide: 500 enterprises x their ordinary days x the alert days is real CPU; off the event loop, so the
    # gates' requests never wait behind an inspector's list.
    lines = await asyncio.to_thread(
        rules.anomalies, firms, first, last, alerts=alerts, enterprise_days=enterprise_days, months=months,
        volumes=volumes, gates=gates, activity=activity, seq_gaps=gaps, until=until)
    return {"from": first.isoformat(), "to": last.isoformat(), "count": len(lines), "anomalies": lines,
            "thresholds": rules.THRESHOLDS}
