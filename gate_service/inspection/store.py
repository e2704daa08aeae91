"""SQL for the inspection workbench: the ledger, alerts, gates, video segments and volumes an inspector reads.

Every figure counts what the clean-transport reports count: an allowed passage, an override counted once
(``passage_counts``, migration 0004). Days are Asia/Shanghai days (``shanghai_day``); bounds are put on ``at``
itself so partitions are pruned and ``passages_enterprise_at_idx`` / ``passages_gate_at_idx`` are used.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import asyncpg

from gate_service.policy.model import period_bounds

Conn = asyncpg.Connection | asyncpg.Pool

# Classes the "heavy truck" measures of an orange/red alert name (国4-and-below heavy trucks stop): heavy trucks,
# and concrete mixers and muck trucks, which are heavy-duty trucks by build.
HEAVY_CLASSES = ("heavy_truck", "concrete_mixer", "muck_truck")
# 国4 and below: the stages the alert measures stop.
LOW_STAGE_MAX = 4


async def enterprise(conn: Conn, enterprise_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT id, name, industry, county, zone_id, grade FROM enterprises WHERE id = $1",
                              enterprise_id)
    return dict(row) if row else None


async def enterprises(conn: Conn, enterprise_id: str | None = None) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT id, name, industry, county, zone_id FROM enterprises "
                            "WHERE ($1::text IS NULL OR id = $1) ORDER BY id", enterprise_id)
    return [dict(r) for r in rows]


async def gates(conn: Conn, enterprise_id: str | None = None) -> list[dict[str, Any]]:
    """Enterprise gates (not city checkpoints), of one enterprise or all."""
    rows = await conn.fetch("SELECT id, name, enterprise_id FROM gates WHERE enterprise_id IS NOT NULL "
                            "AND ($1::text IS NULL OR enterprise_id = $1) ORDER BY id", enterprise_id)
    return [dict(r) for r in rows]


async def alert(conn: Conn, alert_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT id, level, starts_at, ends_at, note, cancelled_at FROM alerts WHERE id = $1",
                              alert_id)
    return dict(row) if row else None


async def alerts_between(conn: Conn, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Alerts (not cancelled) in force at some moment of [start, end)."""
    rows = await conn.fetch(
        """SELECT id, level, starts_at, ends_at, note FROM alerts
           WHERE cancelled_at IS NULL AND starts_at < $2 AND ends_at > $1 ORDER BY starts_at, id""", start, end)
    return [dict(r) for r in rows]


async def gate_days(conn: Conn, enterprise_id: str, first: date, last: date) -> list[dict[str, Any]]:
    """Per gate and local day: trips in / out (allowed, counted as the reports count), denied, all rows."""
    start, end = period_bounds(first, last)
    rows = await conn.fetch(
        """SELECT gate_id, shanghai_day(at) AS day,
                  count(*) FILTER (WHERE counts AND direction = 'in') AS trips_in,
                  count(*) FILTER (WHERE counts AND direction = 'out') AS trips_out,
                  count(*) FILTER (WHERE decision = 'deny') AS denied,
                  count(*) AS passages
           FROM (SELECT gate_id, at, direction, decision,
                        decision = 'allow' AND (overrides IS NULL
                            OR passage_counts(decision, overrides, gate_id, gate_seq, chain_epoch)) AS counts
                 FROM passages WHERE enterprise_id = $1 AND at >= $2 AND at < $3) p
           GROUP BY 1, 2 ORDER BY 1, 2""", enterprise_id, start, end)
    return [dict(r) for r in rows]


_PASSAGE_COLUMNS = """p.id, p.at, p.gate_id, p.gate_seq, p.direction, p.plate, p.plate_color, p.source,
    p.registered, p.emission_stage, p.fuel_type, p.vehicle_class, p.cargo, p.tonnes, p.decision, p.rules,
    p.alert_level, p.blacklisted, p.clean, p.overrides, p.override_reason, p.actor, p.snapshot_ref, p.crop_ref,
    p.video_segment_id, p.video_offset_ms"""


async def heavy_low_stage_admitted(conn: Conn, enterprise_id: str, spans: list[tuple[datetime, datetime]]
                                   ) -> list[dict[str, Any]]:
    """Allowed passages of heavy trucks at 国4 or below (or of unknown stage: unregistered) inside the spans."""
    if not spans:
        return []
    rows = await conn.fetch(
        f"""SELECT {_PASSAGE_COLUMNS} FROM passages p
            JOIN unnest($2::timestamptz[], $3::timestamptz[]) AS s (lo, hi) ON p.at >= s.lo AND p.at < s.hi
            WHERE p.enterprise_id = $1 AND p.at >= $4 AND p.at < $5 AND p.decision = 'allow'
              AND ((p.vehicle_class = ANY ($6::text[]) AND p.emission_stage <= $7) OR NOT p.registered)
            ORDER BY p.at, p.gate_id, p.gate_seq""",
        enterprise_id, [s[0] for s in spans], [s[1] for s in spans], min(s[0] for s in spans),
        max(s[1] for s in spans), list(HEAVY_CLASSES), LOW_STAGE_MAX)
    return [dict(r) for r in rows]


async def overrides(conn: Conn, enterprise_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """人工放行: rows that override another (``overrides`` = the overridden row's id), with what they overrode."""
    rows = await conn.fetch(
        f"""SELECT {_PASSAGE_COLUMNS}, o.at AS overridden_at, o.decision AS overridden_decision,
                   o.rules AS overridden_rules, o.plate AS overridden_plate, o.blacklisted AS overridden_blacklisted
            FROM passages p LEFT JOIN passages o ON o.id = p.overrides
            WHERE p.enterprise_id = $1 AND p.at >= $2 AND p.at < $3 AND p.overrides IS NOT NULL
            ORDER BY p.at, p.gate_id, p.gate_seq""", enterprise_id, start, end)
    return [dict(r) for r in rows]


async def denials(conn: Conn, enterprise_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {_PASSAGE_COLUMNS}, EXISTS (SELECT 1 FROM passages x WHERE x.overrides = p.id) AS overridden
            FROM passages p WHERE p.enterprise_id = $1 AND p.at >= $2 AND p.at < $3 AND p.decision = 'deny'
            ORDER BY p.at, p.gate_id, p.gate_seq""", enterprise_id, start, end)
    return [dict(r) for r in rows]


async def ledger_keys(conn: Conn, enterprise_id: str, start: datetime, end: datetime) -> list[tuple[Any, ...]]:
    """(at, gate_id, gate_seq, id) of every ledger row of the enterprise in [start, end), in ledger order: the
    population a sample is drawn from (the order is fixed, so a seed always draws the same rows)."""
    rows = await conn.fetch(
        """SELECT at, gate_id, gate_seq, id FROM passages WHERE enterprise_id = $1 AND at >= $2 AND at < $3
           ORDER BY at, gate_id, gate_seq""", enterprise_id, start, end)
    return [tuple(r) for r in rows]


async def passages_by_id(conn: Conn, ids: list[Any]) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {_PASSAGE_COLUMNS}, p.vehicle FROM passages p WHERE p.id = ANY ($1::uuid[])",
                            ids)
    return [dict(r) for r in rows]


async def vehicles_now(conn: Conn, plates: list[str]) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT plate, plate_color, emission_stage, fuel_type, vehicle_class, vin, updated_at FROM vehicles
           WHERE plate = ANY ($1::text[])""", plates)
    return {r["plate"]: dict(r) for r in rows}


async def video_segments(conn: Conn, enterprise_id: str, gate_ids: list[str], start: datetime, end: datetime
                         ) -> list[dict[str, Any]]:
    """Segments of these gates overlapping [start, end) (a segment still recording has no end yet) that the
    enterprise owned when they were recorded (``video_segments.enterprise_id``, migration 0008: a gate that changed
    hands shows each owner only its own video)."""
    rows = await conn.fetch(
        """SELECT id, gate_id, started_at, ended_at, status, frames, bytes, sha256, storage_key, deleted_at,
                  legal_hold
           FROM video_segments WHERE gate_id = ANY ($2::text[]) AND enterprise_id = $1 AND started_at < $4
             AND (ended_at IS NULL OR ended_at > $3)
           ORDER BY gate_id, started_at, id""", enterprise_id, gate_ids, start, end)
    return [dict(r) for r in rows]


async def gates_with_video(conn: Conn, enterprise_id: str, gate_ids: list[str], start: datetime, end: datetime
                           ) -> set[str]:
    """Gates that recorded any video for the enterprise in [start, end): only there is a missing stretch a gap."""
    rows = await conn.fetch(
        """SELECT DISTINCT gate_id FROM video_segments WHERE gate_id = ANY ($2::text[]) AND enterprise_id = $1
             AND started_at < $4 AND (ended_at IS NULL OR ended_at > $3)""", enterprise_id, gate_ids, start, end)
    return {r["gate_id"] for r in rows}


# ---- city-wide, for the anomaly list ------------------------------------------------------------------


async def enterprise_days(conn: Conn, first: date, last: date) -> list[tuple[str, date, int]]:
    """(enterprise, local day, trips in) from the daily roll-up: a row only where a passage was allowed."""
    rows = await conn.fetch("SELECT enterprise_id, day, trips FROM transport_daily WHERE day BETWEEN $1 AND $2",
                            first, last)
    return [tuple(r) for r in rows]


async def months(conn: Conn, first_month: date, last_month: date) -> list[tuple[str, date, int, int]]:
    rows = await conn.fetch("SELECT enterprise_id, month, trips, clean_trips FROM transport_monthly "
                            "WHERE month BETWEEN $1 AND $2", first_month, last_month)
    return [tuple(r) for r in rows]


async def rail_conveyor(conn: Conn, first_month: date, last_month: date) -> dict[tuple[str, date], float]:
    rows = await conn.fetch(
        """SELECT enterprise_id, month, rail_tonnes + conveyor_tonnes AS t FROM transport_volumes
           WHERE month BETWEEN $1 AND $2""", first_month, last_month)
    return {(r["enterprise_id"], r["month"]): float(r["t"]) for r in rows}


async def gate_activity(conn: Conn, gate_ids: list[str], window_start: datetime, end: datetime
                        ) -> dict[str, tuple[datetime | None, int]]:
    """{gate: (last passage before ``end``, local days with a passage in [window_start, end))}."""
    rows = await conn.fetch(
        """SELECT g.id, last.at AS last_at, days.n AS active_days
           FROM unnest($1::text[]) AS g (id)
           LEFT JOIN LATERAL (SELECT max(at) AS at FROM passages p WHERE p.gate_id = g.id AND p.at < $3) last ON true
           LEFT JOIN LATERAL (SELECT count(DISTINCT shanghai_day(at)) AS n FROM passages p
                              WHERE p.gate_id = g.id AND p.at >= $2 AND p.at < $3) days ON true""",
        gate_ids, window_start, end)
    return {r["id"]: (r["last_at"], int(r["active_days"] or 0)) for r in rows}


async def seq_gaps(conn: Conn, start: datetime, end: datetime, enterprise_id: str | None = None
                   ) -> list[dict[str, Any]]:
    """Missing rows of each enterprise gate's chain (gate_seq is gap-free by construction, so a hole is a row
    that was removed): holes among the rows of [start, end) and between the first of them and the last row
    before ``start``; and rows missing at the end of the chain (the chain head says seq N, the ledger's last row
    is below N: ``next_seq`` is then N + 1 and ``next_at`` null)."""
    rows = await conn.fetch(
        """WITH g AS (SELECT id AS gate_id, enterprise_id FROM gates
                      WHERE enterprise_id IS NOT NULL AND ($3::text IS NULL OR enterprise_id = $3)),
           p AS (SELECT p.gate_id, g.enterprise_id, p.gate_seq, p.at FROM passages p JOIN g USING (gate_id)
                 WHERE p.at >= $1 AND p.at < $2
                 UNION ALL
                 SELECT g.gate_id, g.enterprise_id, b.gate_seq, b.at FROM g CROSS JOIN LATERAL (
                     SELECT gate_seq, at FROM passages x WHERE x.gate_id = g.gate_id AND x.at < $1
                     ORDER BY gate_seq DESC LIMIT 1) b),
           l AS (SELECT gate_id, enterprise_id, gate_seq, at,
                        lag(gate_seq) OVER w AS prev_seq, lag(at) OVER w AS prev_at
                 FROM p WINDOW w AS (PARTITION BY gate_id ORDER BY gate_seq))
           SELECT gate_id, enterprise_id, prev_seq, gate_seq AS next_seq, prev_at, at AS next_at FROM l
           WHERE prev_seq IS NOT NULL AND gate_seq > prev_seq + 1
           UNION ALL
           SELECT g.gate_id, g.enterprise_id, t.gate_seq, h.seq + 1, t.at, NULL
           FROM g JOIN gate_chain_heads h USING (gate_id)
           CROSS JOIN LATERAL (SELECT gate_seq, at FROM passages x WHERE x.gate_id = g.gate_id
                               ORDER BY gate_seq DESC LIMIT 1) t
           WHERE h.seq > t.gate_seq AND h.at >= $1 AND t.at < $2
           ORDER BY 2, 1, 3""", start, end, enterprise_id)
    return [dict(r) for r in rows]
