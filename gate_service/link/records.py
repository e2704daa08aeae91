"""Side streams a site uploads beside its ledger: vehicles registered at its gates, its enterprise's monthly
transport volumes, and its video index. Each is keyed, so a resend is an upsert, never a duplicate."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from gate_service.auth import Principal
from gate_service.errors import ApiError
from gate_service.link import enrol

VEHICLE_FIELDS = ("plate", "plate_color", "vin", "engine_no", "emission_stage", "fuel_type", "vehicle_class",
                  "registered_on", "haulier", "extra", "updated_at")
VOLUME_FIELDS = ("enterprise_id", "month", "rail_tonnes", "waterway_tonnes", "pipeline_tonnes", "conveyor_tonnes",
                 "note", "reported_by", "reported_role", "updated_at")
SEGMENT_FIELDS = ("id", "gate_id", "started_at", "ended_at", "sha256", "bytes", "legal_hold", "hold_reason", "held_by")


def _json(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def encode(record: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: _json(record[f]) for f in fields}


async def upsert_vehicle(conn: asyncpg.Connection, v: dict[str, Any], owner: str | None = None) -> bool:
    """Newer wins, and the writer's updated_at is kept: a change echoed back by the other tier is then older
    or equal and changes nothing, so the two tiers never ping-pong a vehicle. A time in the future is taken as
    now, so no tier can pin a record against later changes by dating it ahead. ``owner``: the enterprise a
    vehicle first registered at its site belongs to at the platform (issue 15: its owner may change it); an
    existing owner is never changed by the link."""
    status = await conn.execute(
        """INSERT INTO vehicles (plate, plate_color, vin, engine_no, emission_stage, fuel_type, vehicle_class,
                                 registered_on, haulier, extra, updated_at, owner_enterprise_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::date, $9, $10, LEAST($11::text::timestamptz, now()), $12)
           ON CONFLICT (plate) DO UPDATE SET plate_color = EXCLUDED.plate_color, vin = EXCLUDED.vin,
               engine_no = EXCLUDED.engine_no, emission_stage = EXCLUDED.emission_stage,
               fuel_type = EXCLUDED.fuel_type, vehicle_class = EXCLUDED.vehicle_class,
               registered_on = EXCLUDED.registered_on, haulier = EXCLUDED.haulier, extra = EXCLUDED.extra,
               updated_at = EXCLUDED.updated_at,
               owner_enterprise_id = coalesce(vehicles.owner_enterprise_id, EXCLUDED.owner_enterprise_id)
           WHERE vehicles.updated_at < EXCLUDED.updated_at""",
        *(v.get(f) for f in VEHICLE_FIELDS), owner)
    return status.endswith(" 1")


async def accept(conn: asyncpg.Connection, site: Principal, body: dict[str, Any]) -> dict[str, int]:
    counts = {"vehicles": 0, "volumes": 0, "video_segments": 0, "video_segments_refused": 0}
    allowed: dict[str, bool] = {}
    try:
        for v in body.get("vehicles", []):
            counts["vehicles"] += await upsert_vehicle(conn, v, site.enterprise_id)
        for m in body.get("volumes", []):
            if site.enterprise_id is None or m.get("enterprise_id") != site.enterprise_id:
                raise ApiError(403, "forbidden_enterprise",
                               "站点只能上报本企业的运输量 / a site reports its own enterprise's volumes only")
            status = await conn.execute(
                """INSERT INTO transport_volumes (enterprise_id, month, rail_tonnes, waterway_tonnes, pipeline_tonnes,
                                                  conveyor_tonnes, note, reported_by, reported_role, updated_at)
                   VALUES ($1, $2::text::date, $3::text::numeric, $4::text::numeric, $5::text::numeric,
                           $6::text::numeric, $7, $8, $9, LEAST($10::text::timestamptz, now()))
                   ON CONFLICT (enterprise_id, month) DO UPDATE SET rail_tonnes = EXCLUDED.rail_tonnes,
                       waterway_tonnes = EXCLUDED.waterway_tonnes, pipeline_tonnes = EXCLUDED.pipeline_tonnes,
                       conveyor_tonnes = EXCLUDED.conveyor_tonnes, note = EXCLUDED.note,
                       reported_by = EXCLUDED.reported_by, reported_role = EXCLUDED.reported_role,
                       updated_at = EXCLUDED.updated_at
                   WHERE transport_volumes.updated_at < EXCLUDED.updated_at""",
                *(str(m[f]) if f.endswith("_tonnes") else m.get(f) for f in VOLUME_FIELDS))
            counts["volumes"] += status.endswith(" 1")
        for s in body.get("video_segments", []):
            gate_id = s["gate_id"]
            if gate_id not in allowed:
                try:
                    await enrol.may_upload(conn, site, gate_id)
                    allowed[gate_id] = True
                except ApiError:
                    allowed[gate_id] = False
            if not allowed[gate_id]:
                # Another site's gate (or one the platform does not know): not this site's video to index. Counted,
                # not refused, so the vehicles and volumes of the same page still land.
                counts["video_segments_refused"] += 1
                continue
            # Once the platform holds its copy, the index row it was checked against does not change.
            held = await conn.fetchval(
                """INSERT INTO link_video_index AS i (site_id, segment_id, gate_id, started_at, ended_at, sha256, bytes,
                                                    held, hold_reason, held_by)
                   VALUES ($1, $2, $3, $4::text::timestamptz, $5::text::timestamptz, $6, $7, $8, $9, $10)
                   ON CONFLICT (site_id, segment_id) DO UPDATE SET ended_at = EXCLUDED.ended_at,
                       sha256 = EXCLUDED.sha256, bytes = EXCLUDED.bytes, held = i.held OR EXCLUDED.held,
                       hold_reason = coalesce(EXCLUDED.hold_reason, i.hold_reason),
                       held_by = coalesce(EXCLUDED.held_by, i.held_by)
                   WHERE i.storage_key IS NULL OR i.held IS DISTINCT FROM (i.held OR EXCLUDED.held)
                   RETURNING held""",
                site.token_id, s["id"], s["gate_id"], s["started_at"], s.get("ended_at"), s.get("sha256"),
                s.get("bytes"), bool(s.get("legal_hold")), s.get("hold_reason"), s.get("held_by"))
            if held:  # a request per held segment, made once (see hold_request)
                from gate_service.link.clip_requests import hold_request

                await hold_request(conn, site, s)
            counts["video_segments"] += 1
        if body.get("video_releases"):
            # After the holds above: a segment the site held again since is sent as held, never as released.
            from gate_service.link.clip_holds import site_released

            counts["video_releases"] = await site_released(conn, site.token_id, body["video_releases"])
    except (KeyError, TypeError, ValueError, asyncpg.DataError, asyncpg.CheckViolationError,
            asyncpg.ForeignKeyViolationError) as exc:
        raise ApiError(422, "invalid_record", f"记录格式错误 / malformed record: {exc}") from None
    return counts
