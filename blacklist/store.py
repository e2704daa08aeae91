"""SQL of the blacklist: events appended, the current entries kept in step in the same transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from blacklist.model import Principal, SystemActor

Conn = asyncpg.Connection | asyncpg.Pool

_COLUMNS = (
    "id, plate, reason, valid_until, note, case_ref, checkpoint, added_at, added_by, added_role, updated_at, "
    "closed_at, closed_kind, closed_by, close_reason"
)
# An entry past its last day is expired even before the daily job has marked it: lookups and listings agree.
_STATUS = """CASE WHEN closed_kind = 'revoked' THEN 'revoked'
                  WHEN closed_kind = 'expired' OR valid_until < $1::date THEN 'expired'
                  ELSE 'active' END"""
_EVENT_COLUMNS = (
    "id, entry_id, plate, kind, at, actor, role, token_id, reason, valid_until, note, case_ref, checkpoint, why, "
    "source, import_batch, import_line"
)


@dataclass(frozen=True)
class Listing:
    """What one add (over HTTP or one import row) says about a plate."""

    plate: str
    reason: str
    valid_until: date | None = None
    note: str | None = None
    case_ref: str | None = None
    checkpoint: str | None = None


@dataclass(frozen=True)
class Origin:
    source: str = "api"
    batch: str | None = None
    line: int | None = None


async def lock_writers(conn: asyncpg.Connection) -> None:
    # Writers are rare (police at a desk), so serialising them is cheap and makes "look for the open entry,
    # then insert or merge" race-free without per-plate locks. Readers are not blocked.
    await conn.execute("LOCK TABLE blacklist_entries IN SHARE ROW EXCLUSIVE MODE")


async def _event(
    conn: asyncpg.Connection, entry_id: int, plate: str, kind: str, who: Principal, origin: Origin, *,
    listing: Listing | None = None, why: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO blacklist_events (entry_id, plate, kind, actor, role, token_id, reason, valid_until, note,
                                         case_ref, checkpoint, why, source, import_batch, import_line)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)""",
        entry_id, plate, kind, who.actor, who.role, who.token_id,
        listing.reason if listing else None, listing.valid_until if listing else None,
        listing.note if listing else None, listing.case_ref if listing else None,
        listing.checkpoint if listing else None, why, origin.source, origin.batch, origin.line,
    )


async def _open_entry(conn: asyncpg.Connection, plate: str, today: date) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS}, {_STATUS} AS status FROM blacklist_entries WHERE plate = $2 AND closed_at IS NULL",
        today, plate,
    )


async def _close(
    conn: asyncpg.Connection, entry: asyncpg.Record, kind: str, who: Principal, why: str, origin: Origin, today: date
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"""UPDATE blacklist_entries SET closed_at = now(), closed_kind = $2, closed_by = $3, close_reason = $4,
                                         updated_at = now()
            WHERE id = $5 RETURNING {_COLUMNS}, {_STATUS} AS status""",
        today, kind, who.actor, why, entry["id"],
    )
    await _event(conn, entry["id"], entry["plate"], "revoke" if kind == "revoked" else "expire", who, origin, why=why)
    return row


def later(a: date | None, b: date | None) -> date | None:
    """The later of two last days, where None (until revoked) is later than any date."""
    if a is None or b is None:
        return None
    return max(a, b)


async def add_or_merge(
    conn: asyncpg.Connection, listing: Listing, who: Principal, origin: Origin, today: date
) -> tuple[asyncpg.Record, str]:
    """Open an entry for the plate, or merge into its open one. Call inside a transaction after lock_writers.

    Merging keeps the open entry (its id, first reason, added_at) and sets valid_until to the later of the two;
    note, case reference and checkpoint are filled only where the entry had none. The merge event keeps
    everything the new report said, so nothing is lost from the history.
    """
    entry = await _open_entry(conn, listing.plate, today)
    if entry is not None and entry["status"] == "expired":
        # Past its last day but not yet marked by the daily job: mark it now, so the new listing starts afresh.
        await _close(conn, entry, "expired", SystemActor(), "有效期已过 / past valid_until", Origin("scheduler"), today)
        entry = None
    if entry is None:
        row = await conn.fetchrow(
            f"""INSERT INTO blacklist_entries (plate, reason, valid_until, note, case_ref, checkpoint,
                                               added_by, added_role, added_token_id)
                VALUES ($2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {_COLUMNS}, {_STATUS} AS status""",
            today, listing.plate, listing.reason, listing.valid_until, listing.note, listing.case_ref,
            listing.checkpoint, who.actor, who.role, who.token_id,
        )
        await _event(conn, row["id"], listing.plate, "add", who, origin, listing=listing)
        return row, "added"
    row = await conn.fetchrow(
        f"""UPDATE blacklist_entries SET valid_until = $2, note = COALESCE(note, $3),
                                         case_ref = COALESCE(case_ref, $4), checkpoint = COALESCE(checkpoint, $5),
                                         updated_at = now()
            WHERE id = $6 RETURNING {_COLUMNS}, {_STATUS} AS status""",
        today, later(entry["valid_until"], listing.valid_until), listing.note, listing.case_ref,
        listing.checkpoint, entry["id"],
    )
    await _event(conn, entry["id"], listing.plate, "merge", who, origin, listing=listing)
    return row, "merged"


async def revoke(
    conn: asyncpg.Connection, plate: str, why: str, who: Principal, today: date
) -> asyncpg.Record | None:
    """Close the plate's active entry as revoked; None when it has none (never listed, revoked or expired)."""
    entry = await _open_entry(conn, plate, today)
    if entry is None or entry["status"] != "active":
        return None
    return await _close(conn, entry, "revoked", who, why, Origin("api"), today)


async def expire_due(conn: asyncpg.Connection, today: date, who: Principal | None = None) -> list[str]:
    """Mark every open entry whose last day is before ``today``; return their plates. Idempotent."""
    who = who or SystemActor()
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS}, {_STATUS} AS status FROM blacklist_entries
            WHERE closed_at IS NULL AND valid_until < $1 ORDER BY id""",
        today,
    )
    for row in rows:
        await _close(conn, row, "expired", who, "有效期已过 / past valid_until", Origin("scheduler"), today)
    return [r["plate"] for r in rows]


async def open_entries(conn: Conn, plates: list[str] | None = None) -> list[asyncpg.Record]:
    """Open entries (all, or of the given plates) for the gates' cache; the date check is the cache's."""
    if plates is None:
        return await conn.fetch(f"SELECT {_COLUMNS} FROM blacklist_entries WHERE closed_at IS NULL")
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM blacklist_entries WHERE closed_at IS NULL AND plate = ANY($1::text[])", plates
    )


_LIST = f"""SELECT * FROM (SELECT {_COLUMNS}, {_STATUS} AS status FROM blacklist_entries) e
            WHERE ($2::text IS NULL OR plate = $2) AND ($3::text IS NULL OR reason = $3)
              AND ($4::text IS NULL OR status = $4)
              AND ($5::timestamptz IS NULL OR added_at >= $5) AND ($6::timestamptz IS NULL OR added_at < $6)
            ORDER BY added_at DESC, id DESC"""


async def entry_as_of(conn: Conn, plate: str, at: datetime) -> dict[str, Any] | None:
    """The entry the plate had at moment ``at`` (made by then, not yet revoked or marked expired), with its
    last day as the listings made by then set it; None when it had none. The day check is the caller's."""
    row = await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM blacklist_entries
            WHERE plate = $1 AND added_at <= $2 AND (closed_at IS NULL OR closed_at > $2)
            ORDER BY added_at DESC LIMIT 1""",
        plate, at,
    )
    if row is None:
        return None
    entry = dict(row)
    # A later merge may have extended valid_until: at `at` only the listings made by then counted.
    listings = await conn.fetch(
        """SELECT valid_until FROM blacklist_events
           WHERE entry_id = $1 AND kind IN ('add', 'merge') AND at <= $2 ORDER BY id""",
        entry["id"], at,
    )
    if listings:
        until = listings[0]["valid_until"]
        for event in listings[1:]:
            until = later(until, event["valid_until"])
        entry["valid_until"] = until
    return entry


async def list_entries(
    conn: Conn, today: date, *, plate: str | None = None, reason: str | None = None, status: str | None = None,
    added_from: datetime | None = None, added_before: datetime | None = None,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(_LIST, today, plate, reason, status, added_from, added_before)
    return [dict(r) for r in rows]


async def iter_entries(
    pool: asyncpg.Pool, today: date, *, plate: str | None = None, reason: str | None = None,
    status: str | None = None, added_from: datetime | None = None, added_before: datetime | None = None,
    size: int = 500,
) -> AsyncIterator[list[asyncpg.Record]]:
    """The same rows as :func:`list_entries`, through a server-side cursor, a chunk at a time (exports)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        cursor = await conn.cursor(_LIST, today, plate, reason, status, added_from, added_before)
        while rows := await cursor.fetch(size):
            yield rows


async def entry_by_id(conn: Conn, entry_id: int, today: date) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, {_STATUS} AS status FROM blacklist_entries WHERE id = $2", today, entry_id
    )
    return dict(row) if row else None


async def history(conn: Conn, plate: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {_EVENT_COLUMNS} FROM blacklist_events WHERE plate = $1 ORDER BY id", plate)
    return [dict(r) for r in rows]
