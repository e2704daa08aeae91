"""Writing and reading the ledger."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any
from uuid import uuid4

import asyncpg

from gate_service.ledger.chain import GENESIS, HASHED_FIELDS, link

log = logging.getLogger(__name__)

_INSERT = (
    f"INSERT INTO passages ({', '.join(HASHED_FIELDS)}, prev_hash, hash) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(HASHED_FIELDS) + 3))})"
)


async def ensure_partition(conn: asyncpg.Connection | asyncpg.Pool, month: date) -> str:
    return await conn.fetchval("SELECT ensure_passage_partition($1)", month)


async def ensure_partitions_ahead(conn: asyncpg.Connection | asyncpg.Pool, today: date, months: int = 3) -> list[str]:
    """Create this month's and the next ``months`` partitions (the scheduled job and start-up call it)."""
    created = []
    year, month = today.year, today.month
    for _ in range(months + 1):
        created.append(await ensure_partition(conn, date(year, month, 1)))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return created


async def append(conn: asyncpg.Connection, row: dict[str, Any]) -> dict[str, Any]:
    """Append one passage to its gate's chain. Call inside a transaction; fills id, seq, hashes.

    The chain head row is locked for the rest of the transaction, which serialises appends per gate
    (gates are independent) and keeps gate_seq gap-free.
    """
    row = dict(row)
    row.setdefault("id", uuid4())
    row.setdefault("recorded_at", datetime.now(timezone.utc))
    gate_id = row["gate_id"]
    await conn.execute(
        "INSERT INTO gate_chain_heads (gate_id, seq, hash, at) VALUES ($1, 0, $2, $3) ON CONFLICT DO NOTHING",
        gate_id, GENESIS, row["at"],
    )
    head = await conn.fetchrow("SELECT seq, hash FROM gate_chain_heads WHERE gate_id = $1 FOR UPDATE", gate_id)
    row["gate_seq"] = head["seq"] + 1
    prev = bytes(head["hash"])
    digest = link(prev, row)
    args = [row.get(name) for name in HASHED_FIELDS] + [prev, digest]
    try:
        async with conn.transaction():  # a savepoint: a missing partition must not abort the caller's work
            await conn.execute(_INSERT, *args)
    except asyncpg.CheckViolationError as exc:
        if "no partition" not in str(exc):
            raise
        await ensure_partition(conn, row["at"].astimezone(timezone.utc).date())
        await conn.execute(_INSERT, *args)
    await conn.execute(
        "UPDATE gate_chain_heads SET seq = $2, hash = $3, at = $4 WHERE gate_id = $1",
        gate_id, row["gate_seq"], digest, row["at"],
    )
    row["prev_hash"], row["hash"] = prev, digest
    return row


@dataclass
class Break:
    gate_id: str
    seq: int | None
    passage_id: str | None
    problem: str

    def __str__(self) -> str:
        where = f"gate {self.gate_id}" + (f" seq {self.seq}" if self.seq is not None else "")
        if self.passage_id:
            where += f" passage {self.passage_id}"
        return f"{where}: {self.problem}"


async def verify(conn: asyncpg.Connection, gate_id: str | None = None) -> tuple[int, list[Break]]:
    """Recompute every chain; return (rows checked, the first break of each broken gate)."""
    gates = [gate_id] if gate_id else [
        r["gate_id"] for r in await conn.fetch(
            "SELECT gate_id FROM gate_chain_heads UNION SELECT DISTINCT gate_id FROM passages ORDER BY 1")
    ]
    checked = 0
    breaks: list[Break] = []
    for gid in gates:
        anchors: dict[int, set[bytes]] = {}
        for r in await conn.fetch("SELECT seq, hash FROM ledger_anchors WHERE gate_id = $1", gid):
            anchors.setdefault(r["seq"], set()).add(bytes(r["hash"]))
        dropped = await _dropped_runs(conn, gid)
        epochs = await _epochs(conn, gid)
        prev, expected_seq, broken, epoch, highest = GENESIS, 1, None, 0, 0
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cursor = conn.cursor(
                f"SELECT {', '.join(HASHED_FIELDS)}, prev_hash, hash, chain_epoch FROM passages WHERE gate_id = $1 "
                "ORDER BY chain_epoch, gate_seq",
                gid, prefetch=2000,
            )
            async for rec in cursor:
                checked += 1
                row = dict(rec)
                ident = str(row["id"])
                if row["chain_epoch"] != epoch:
                    # A resolved break (联网): the chain goes on from the epoch's recorded anchor.
                    prev, expected_seq, broken = _enter_epochs(gid, epochs, epoch, row["chain_epoch"], prev,
                                                               expected_seq)
                    epoch = row["chain_epoch"]
                    if broken is not None:
                        break
                highest = max(highest, row["gate_seq"])
                # Rows retention dropped with their month: bridge the gap with what it recorded at the time.
                prev, expected_seq = _bridge(dropped, prev, expected_seq, row["gate_seq"])
                if row["gate_seq"] != expected_seq:
                    problem = (f"row(s) missing before seq {row['gate_seq']} (expected {expected_seq})"
                               if row["gate_seq"] > expected_seq else f"duplicate seq {row['gate_seq']}")
                    broken = Break(gid, row["gate_seq"], ident, problem)
                    break
                if bytes(row["prev_hash"]) != prev:
                    broken = Break(gid, row["gate_seq"], ident, "prev_hash does not match the previous row")
                    break
                if link(prev, row) != bytes(row["hash"]):
                    broken = Break(gid, row["gate_seq"], ident, "content was changed after it was written")
                    break
                if row["gate_seq"] in anchors and bytes(row["hash"]) not in anchors[row["gate_seq"]]:
                    broken = Break(gid, row["gate_seq"], ident, "differs from the day's recorded anchor")
                    break
                prev, expected_seq = bytes(row["hash"]), expected_seq + 1
            if broken is None and epochs and max(epochs) > epoch:  # epochs begun with no row of their own yet
                prev, expected_seq, broken = _enter_epochs(gid, epochs, epoch, max(epochs), prev, expected_seq)
            if broken is None:
                head = await conn.fetchrow("SELECT seq, hash FROM gate_chain_heads WHERE gate_id = $1", gid)
                if head is not None:
                    prev, expected_seq = _bridge(dropped, prev, expected_seq, head["seq"] + 1)
                last = expected_seq - 1
                if head is not None and (head["seq"] != last or bytes(head["hash"]) != prev):
                    broken = Break(gid, last + 1 if head["seq"] > last else last, None,
                                   f"chain head says seq {head['seq']} but the ledger ends at seq {last}: "
                                   "rows missing at the end")
                elif any(seq > max(last, highest) for seq in anchors):
                    broken = Break(gid, last, None, "an anchor names a row that is no longer in the ledger")
        if broken is not None:
            breaks.append(broken)
    return checked, breaks


async def _epochs(conn: asyncpg.Connection, gate_id: str) -> dict[int, tuple[int, bytes, int, bytes]]:
    """epoch -> (start_seq, anchor_prev_hash, previous_end_seq, previous_end_hash) of a gate's resolved breaks."""
    if not await conn.fetchval("SELECT to_regclass('ledger_epochs') IS NOT NULL"):
        return {}
    rows = await conn.fetch("SELECT * FROM ledger_epochs WHERE gate_id = $1", gate_id)
    return {r["epoch"]: (r["start_seq"], bytes(r["anchor_prev_hash"]), r["previous_end_seq"],
                         bytes(r["previous_end_hash"])) for r in rows}


def _enter_epochs(gid: str, epochs: dict[int, tuple[int, bytes, int, bytes]], current: int, target: int, prev: bytes,
                  expected: int) -> tuple[bytes, int, Break | None]:
    """Move the walk from epoch ``current`` to ``target``: each epoch left must end where its successor's record
    says it ended (nothing of the old history may go missing), and the next starts from its anchor."""
    for e in range(current + 1, target + 1):
        if e not in epochs:
            return prev, expected, Break(gid, expected, None, f"rows of chain epoch {e} with no record of that epoch")
        start, anchor, end_seq, end_hash = epochs[e]
        if expected - 1 != end_seq or prev != end_hash:
            return prev, expected, Break(gid, expected, None, f"epoch {e - 1} ends at seq {expected - 1}, but epoch {e} "
                                         f"was opened when it ended at seq {end_seq}: rows missing or changed")
        prev, expected = anchor, start
    return prev, expected, None


async def _dropped_runs(conn: asyncpg.Connection, gate_id: str) -> dict[int, tuple[int, bytes, bytes]]:
    """first_seq -> (last_seq, first_prev_hash, last_hash) of the runs of this gate's rows retention dropped."""
    exists = await conn.fetchval("SELECT to_regclass('ledger_dropped_runs') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch(
        "SELECT first_seq, last_seq, first_prev_hash, last_hash FROM ledger_dropped_runs WHERE gate_id = $1", gate_id)
    return {r["first_seq"]: (r["last_seq"], bytes(r["first_prev_hash"]), bytes(r["last_hash"])) for r in rows}


def _bridge(dropped: dict[int, tuple[int, bytes, bytes]], prev: bytes, expected: int, upto: int) -> tuple[bytes, int]:
    """Skip over dropped runs that start exactly where the chain stands and link to it; stop before ``upto``.

    A run only bridges when its recorded first_prev_hash is the hash the chain has reached, so a row deleted
    by hand (with no run recorded for it) still breaks the chain.
    """
    while expected < upto and expected in dropped:
        last_seq, first_prev, last_hash = dropped[expected]
        if first_prev != prev or last_seq >= upto:
            break
        prev, expected = last_hash, last_seq + 1
    return prev, expected


async def record_anchors(conn: asyncpg.Connection, day: date) -> int:
    """Record each gate's chain head for ``day`` (the daily job); idempotent."""
    status = await conn.execute(
        """INSERT INTO ledger_anchors (gate_id, day, seq, hash)
           SELECT gate_id, $1, seq, hash FROM gate_chain_heads WHERE seq > 0
           ON CONFLICT (gate_id, day) DO NOTHING""",
        day,
    )
    return int(status.split()[-1])
