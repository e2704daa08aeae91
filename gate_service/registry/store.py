"""SQL for the registry tables."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import asyncpg

ENTERPRISE_COLUMNS = "id, name, industry, county, zone_id, retrofit_completed_on, grade, created_at, updated_at"
GATE_COLUMNS = "id, name, enterprise_id, zone_id, created_at, updated_at"
VEHICLE_COLUMNS = (
    "plate, plate_color, vin, engine_no, emission_stage, fuel_type, vehicle_class, registered_on, haulier, extra, "
    "owner_enterprise_id, created_at, updated_at"
)


def _date(value: str | date | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


async def upsert_enterprise(conn: asyncpg.Connection | asyncpg.Pool, ident: str, body: dict[str, Any]) -> tuple[dict, bool]:
    row = await conn.fetchrow(
        f"""INSERT INTO enterprises (id, name, industry, county, zone_id, retrofit_completed_on, grade)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, industry = EXCLUDED.industry,
                county = EXCLUDED.county, zone_id = EXCLUDED.zone_id,
                retrofit_completed_on = EXCLUDED.retrofit_completed_on, grade = EXCLUDED.grade, updated_at = now()
            RETURNING {ENTERPRISE_COLUMNS}, (xmax = 0) AS created""",
        ident,
        body["name"],
        body["industry"],
        body.get("county"),
        body.get("zone_id"),
        _date(body.get("retrofit_completed_on")),
        body.get("grade"),
    )
    data = dict(row)
    return data, data.pop("created")


async def get_enterprise(conn: asyncpg.Connection | asyncpg.Pool, ident: str) -> dict | None:
    row = await conn.fetchrow(f"SELECT {ENTERPRISE_COLUMNS} FROM enterprises WHERE id = $1", ident)
    return dict(row) if row else None


async def list_enterprises(conn: asyncpg.Connection | asyncpg.Pool, **filters: Any) -> list[dict]:
    rows = await conn.fetch(
        f"""SELECT {ENTERPRISE_COLUMNS} FROM enterprises
            WHERE ($1::text IS NULL OR id = $1) AND ($2::text IS NULL OR zone_id = $2)
              AND ($3::text IS NULL OR industry = $3) AND ($4::text IS NULL OR county = $4)
            ORDER BY id""",
        filters.get("id"),
        filters.get("zone_id"),
        filters.get("industry"),
        filters.get("county"),
    )
    return [dict(r) for r in rows]


async def upsert_gate(conn: asyncpg.Connection | asyncpg.Pool, ident: str, body: dict[str, Any]) -> tuple[dict, bool]:
    row = await conn.fetchrow(
        f"""INSERT INTO gates (id, name, enterprise_id, zone_id) VALUES ($1, $2, $3, $4)
            ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, enterprise_id = EXCLUDED.enterprise_id,
                zone_id = EXCLUDED.zone_id, updated_at = now()
            RETURNING {GATE_COLUMNS}, (xmax = 0) AS created""",
        ident,
        body["name"],
        body.get("enterprise_id"),
        body["zone_id"],
    )
    data = dict(row)
    return data, data.pop("created")


async def get_gate(conn: asyncpg.Connection | asyncpg.Pool, ident: str) -> dict | None:
    row = await conn.fetchrow(f"SELECT {GATE_COLUMNS} FROM gates WHERE id = $1", ident)
    return dict(row) if row else None


async def list_gates(conn: asyncpg.Connection | asyncpg.Pool, enterprise_id: str | None = None) -> list[dict]:
    rows = await conn.fetch(
        f"SELECT {GATE_COLUMNS} FROM gates WHERE ($1::text IS NULL OR enterprise_id = $1) ORDER BY id", enterprise_id
    )
    return [dict(r) for r in rows]


async def upsert_vehicle(conn: asyncpg.Connection | asyncpg.Pool, plate: str, fields: dict[str, Any], *,
                         owner: str | None = None, set_owner: bool = False) -> tuple[dict, bool]:
    """Create or update; the owner is written only when ``set_owner`` (an update that names none keeps it)."""
    row = await conn.fetchrow(
        f"""INSERT INTO vehicles (plate, plate_color, vin, engine_no, emission_stage, fuel_type, vehicle_class,
                                  registered_on, haulier, extra, owner_enterprise_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (plate) DO UPDATE SET plate_color = EXCLUDED.plate_color, vin = EXCLUDED.vin,
                engine_no = EXCLUDED.engine_no, emission_stage = EXCLUDED.emission_stage,
                fuel_type = EXCLUDED.fuel_type, vehicle_class = EXCLUDED.vehicle_class,
                registered_on = EXCLUDED.registered_on, haulier = EXCLUDED.haulier,
                extra = vehicles.extra || EXCLUDED.extra,
                owner_enterprise_id = CASE WHEN $12 THEN EXCLUDED.owner_enterprise_id
                                           ELSE vehicles.owner_enterprise_id END,
                updated_at = now()
            RETURNING {VEHICLE_COLUMNS}, (xmax = 0) AS created""",
        *_vehicle_values(plate, fields), owner, set_owner,
    )
    data = dict(row)
    return data, data.pop("created")


def _vehicle_values(plate: str, fields: dict[str, Any]) -> tuple[Any, ...]:
    return (
        plate,
        fields.get("plate_color"),
        (fields.get("vin") or None) and fields["vin"].upper(),
        fields.get("engine_no"),
        fields.get("emission_stage"),
        fields.get("fuel_type"),
        fields.get("vehicle_class"),
        _date(fields.get("registered_on")),
        fields.get("haulier"),
        fields.get("extra") or {},
    )


async def insert_vehicle(conn: asyncpg.Connection | asyncpg.Pool, plate: str, fields: dict[str, Any], *,
                         owner: str | None = None) -> dict | None:
    """Register a vehicle the registry does not know; None (and nothing written) when it knows it already."""
    row = await conn.fetchrow(
        f"""INSERT INTO vehicles (plate, plate_color, vin, engine_no, emission_stage, fuel_type, vehicle_class,
                                  registered_on, haulier, extra, owner_enterprise_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (plate) DO NOTHING
            RETURNING {VEHICLE_COLUMNS}""",
        *_vehicle_values(plate, fields), owner,
    )
    return dict(row) if row else None


def vehicle_snapshot(row: dict | None) -> dict | None:
    """The facts of a vehicle as JSON for the audit log (its before/after)."""
    if row is None:
        return None
    keys = ("plate", "plate_color", "vin", "engine_no", "emission_stage", "fuel_type", "vehicle_class",
            "registered_on", "haulier", "extra", "owner_enterprise_id")
    out = {k: row.get(k) for k in keys}
    if isinstance(out["registered_on"], date):
        out["registered_on"] = out["registered_on"].isoformat()
    return out


async def get_vehicle(conn: asyncpg.Connection | asyncpg.Pool, plate: str, *, for_update: bool = False) -> dict | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {VEHICLE_COLUMNS} FROM vehicles WHERE plate = $1{lock}", plate)
    return dict(row) if row else None


_VERSION_COLUMNS = ("plate, plate_color, vin, engine_no, emission_stage, fuel_type, vehicle_class, registered_on, "
                    "haulier, valid_from, valid_to")


async def vehicle_as_of(conn: asyncpg.Connection | asyncpg.Pool, plate: str, at: datetime) -> dict | None:
    """The vehicle as the registry described it at moment ``at`` (vehicle_versions, migration 0007).

    A vehicle first registered after ``at`` is taken as its first record describes it: what it is (fuel,
    emission stage, class) did not begin when someone typed it in, whereas what changed later (a retrofit, a
    correction, a rewrite) is not applied to the past. None: never registered, or removed before ``at``.
    """
    row = await conn.fetchrow(
        f"""SELECT {_VERSION_COLUMNS} FROM vehicle_versions
            WHERE plate = $1 AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2)""",
        plate, at,
    )
    if row is None:
        row = await conn.fetchrow(
            f"""SELECT {_VERSION_COLUMNS} FROM vehicle_versions WHERE plate = $1 AND valid_from > $2
                ORDER BY valid_from LIMIT 1""",
            plate, at,
        )
    return dict(row) if row else None


async def vehicle_history(conn: asyncpg.Connection | asyncpg.Pool, plate: str) -> list[dict]:
    rows = await conn.fetch(f"SELECT {_VERSION_COLUMNS} FROM vehicle_versions WHERE plate = $1 ORDER BY valid_from, id",
                            plate)
    return [dict(r) for r in rows]


async def list_vehicles(
    conn: asyncpg.Connection | asyncpg.Pool, *, fuel_type: str | None, vehicle_class: str | None,
    haulier: str | None, limit: int, after: str | None, owner: str | None = None,
) -> list[dict]:
    rows = await conn.fetch(
        f"""SELECT {VEHICLE_COLUMNS} FROM vehicles
            WHERE ($1::text IS NULL OR fuel_type = $1) AND ($2::text IS NULL OR vehicle_class = $2)
              AND ($3::text IS NULL OR haulier = $3) AND ($4::text IS NULL OR plate > $4)
              AND ($6::text IS NULL OR owner_enterprise_id = $6)
            ORDER BY plate LIMIT $5""",
        fuel_type,
        vehicle_class,
        haulier,
        after,
        limit,
        owner,
    )
    return [dict(r) for r in rows]
