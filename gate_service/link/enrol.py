"""Enrolment: site tokens, the gates a site may upload for, and pinning the site's public key."""

from __future__ import annotations

from typing import Any

import asyncpg

from gate_service.auth import Principal, create_token
from gate_service.errors import ApiError

Conn = asyncpg.Connection | asyncpg.Pool


async def create_site_token(conn: Conn, *, enterprise_id: str | None, gate_ids: list[str], name: str = "") -> tuple[int, str]:
    """A site token: an enterprise's site (all its gates) or a checkpoint site bound to the gates listed."""
    if enterprise_id is None and not gate_ids:
        raise ValueError("a site token needs --enterprise, or --gate (repeated) for a checkpoint site")
    for gate_id in gate_ids:
        owner = await conn.fetchrow("SELECT enterprise_id FROM gates WHERE id = $1", gate_id)
        if owner is None:
            raise ValueError(f"no gate {gate_id!r}: register it first (PUT /api/v1/gates/{gate_id})")
        if enterprise_id is not None and owner["enterprise_id"] != enterprise_id:
            raise ValueError(f"gate {gate_id!r} does not belong to enterprise {enterprise_id!r}")
    token_id, secret = await create_token(conn, "site", enterprise_id=enterprise_id, name=name)
    for gate_id in gate_ids:
        await conn.execute("INSERT INTO link_site_gates (site_id, gate_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                           token_id, gate_id)
    await conn.execute("INSERT INTO link_sites (site_id) VALUES ($1) ON CONFLICT DO NOTHING", token_id)
    return token_id, secret


async def may_upload(conn: Conn, site: Principal, gate_id: str) -> str | None:
    """403 unless the gate is the site's: listed for it, or (no list) a gate of its enterprise. Returns the
    enterprise the gate's rows must name (the gate's owner at the platform)."""
    gate = await conn.fetchrow("SELECT enterprise_id FROM gates WHERE id = $1", gate_id)
    if gate is None:
        raise ApiError(422, "unknown_gate", f"平台未登记门岗 {gate_id} / the platform has no gate {gate_id}",
                       field="gate_id")
    listed = await conn.fetch("SELECT gate_id FROM link_site_gates WHERE site_id = $1", site.token_id)
    allowed = gate_id in {r["gate_id"] for r in listed} if listed else (
        site.enterprise_id is not None and gate["enterprise_id"] == site.enterprise_id)
    if not allowed:
        raise ApiError(403, "forbidden_gate", f"该站点无权上传门岗 {gate_id} / this site may not upload for gate {gate_id}")
    owner = await conn.fetchval("SELECT site_id FROM link_gate_heads WHERE gate_id = $1", gate_id)
    if owner is not None and owner != site.token_id:
        raise ApiError(409, "gate_owned_by_other_site",
                       f"门岗 {gate_id} 已由另一站点上传 / gate {gate_id} is uploaded by another site")
    return gate["enterprise_id"]


async def pin_key(conn: Conn, site: Principal, public_key: bytes, software: str | None) -> dict[str, Any]:
    """First contact pins the key; the same key again is fine; another key is refused until re-enrolment."""
    await conn.execute("INSERT INTO link_sites (site_id) VALUES ($1) ON CONFLICT DO NOTHING", site.token_id)
    row = await conn.fetchrow(
        """UPDATE link_sites SET public_key = COALESCE(public_key, $2),
                  key_pinned_at = COALESCE(key_pinned_at, CASE WHEN public_key IS NULL THEN now() END),
                  first_seen = COALESCE(first_seen, now()), last_seen = now(), software = $3
           WHERE site_id = $1 RETURNING public_key, key_pinned_at""", site.token_id, public_key, software)
    if bytes(row["public_key"]) != public_key:
        raise ApiError(409, "site_key_mismatch",
                       "站点密钥与登记的不一致,需管理员重新登记 / this site's key differs from the one enrolled; "
                       "an admin must re-enrol the site")
    return {"site_id": site.token_id, "key_pinned_at": row["key_pinned_at"]}


async def site_key(conn: Conn, site_id: int) -> bytes:
    key = await conn.fetchval("SELECT public_key FROM link_sites WHERE site_id = $1", site_id)
    if key is None:
        raise ApiError(409, "site_not_enrolled", "站点尚未登记公钥 / the site has not registered its key (POST /api/v1/link/enrol)")
    return bytes(key)


async def reenrol(conn: Conn, site_id: int) -> bool:
    """Forget the pinned key: the site's next contact pins its new one (an admin's decision, audited)."""
    status = await conn.execute("UPDATE link_sites SET public_key = NULL, key_pinned_at = NULL WHERE site_id = $1",
                                site_id)
    return status.endswith(" 1")
