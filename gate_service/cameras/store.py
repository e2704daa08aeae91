"""SQL of the gate cameras (migration 0010). Rows leave this module with the URL redacted unless asked for."""

from __future__ import annotations

from typing import Any

import asyncpg

from gate_service.cameras.redact import redact_url

COLUMNS = "id, gate_id, name, vendor, rtsp_url, roles, read_fps, direction, enabled, created_at, updated_at"


def public(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """A camera as an API answer or export shows it: the URL without its credentials."""
    out = dict(row)
    out["rtsp_url"] = redact_url(out["rtsp_url"])
    out["roles"] = list(out["roles"])
    return out


async def upsert(conn: asyncpg.Connection, camera_id: str, gate_id: str, body: dict[str, Any]
                 ) -> tuple[dict[str, Any], bool]:
    """Create or update; a body whose URL is the redacted one keeps the stored credentials."""
    url = body["rtsp_url"]
    if "***@" in url:
        old = await conn.fetchval("SELECT rtsp_url FROM gate_cameras WHERE id = $1", camera_id)
        if old is None or redact_url(old) != url:
            raise ValueError("redacted_url")
        url = old
    row = await conn.fetchrow(
        f"""INSERT INTO gate_cameras (id, gate_id, name, vendor, rtsp_url, roles, read_fps, direction, enabled)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (id) DO UPDATE SET gate_id = EXCLUDED.gate_id, name = EXCLUDED.name,
                vendor = EXCLUDED.vendor, rtsp_url = EXCLUDED.rtsp_url, roles = EXCLUDED.roles,
                read_fps = EXCLUDED.read_fps, direction = EXCLUDED.direction, enabled = EXCLUDED.enabled,
                updated_at = now()
            RETURNING {COLUMNS}, (xmax = 0) AS created""",
        camera_id, gate_id, body.get("name"), body.get("vendor", "generic"), url,
        sorted(set(body["roles"])), float(body.get("read_fps", 5)), body.get("direction", "in"),
        bool(body.get("enabled", True)))
    out = dict(row)
    created = out.pop("created")
    return out, created


async def get(conn: asyncpg.Connection | asyncpg.Pool, camera_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM gate_cameras WHERE id = $1", camera_id)
    return dict(row) if row is not None else None


async def list_for(conn: asyncpg.Connection | asyncpg.Pool, gate_id: str | None = None,
                   enabled_only: bool = False) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {COLUMNS} FROM gate_cameras
            WHERE ($1::text IS NULL OR gate_id = $1) AND (NOT $2 OR enabled) ORDER BY gate_id, id""",
        gate_id, enabled_only)
    return [dict(r) for r in rows]


async def delete(conn: asyncpg.Connection, camera_id: str) -> bool:
    done = await conn.execute("DELETE FROM gate_cameras WHERE id = $1", camera_id)
    return not done.endswith(" 0")
