"""The platform's side of the uplink: accepting a site's batch of ledger rows against what it already holds.

Uploaded rows go into the platform's own ``passages`` table with the site's chain fields unchanged (gate_seq,
prev_hash, hash) plus ``origin_site`` and ``uploaded_at``. Why the same table and not a view over a second
one: the passages list, its exports, the bureau's reports (the transport_daily trigger fires on these inserts),
enterprise isolation and ``ledger verify`` all work on it already, so a site's rows are covered by all of them
with no second code path. A gate is run by exactly one tier, so the platform's chain of a site's gate is the
site's chain. ``gate_chain_heads`` follows the acknowledged head, which keeps ``ledger verify`` true there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import asyncpg

from gate_service.ledger.chain import GENESIS, HASHED_FIELDS, link
from gate_service.ledger.store import ensure_partition

_COLUMNS = (*HASHED_FIELDS, "prev_hash", "hash", "origin_site", "uploaded_at", "chain_epoch")
_INSERT = (f"INSERT INTO passages ({', '.join(_COLUMNS)}) VALUES "
           f"({', '.join(f'${i}' for i in range(1, len(_COLUMNS) + 1))})")


@dataclass
class Outcome:
    """What the platform answers for one gate after a batch or a sync."""

    gate_id: str
    acked_seq: int
    acked_hash: bytes
    chain: str
    first_bad_seq: int | None
    problem: str | None
    quarantine_seq: int
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    # The row of this batch the platform's database refused, if one was: {"seq", "rule"}.
    refused: dict[str, Any] | None = None

    def public(self) -> dict[str, Any]:
        return {
            "gate_id": self.gate_id, "acked_seq": self.acked_seq, "acked_hash": self.acked_hash.hex(),
            "chain": self.chain, "first_bad_seq": self.first_bad_seq, "problem": self.problem,
            "quarantine_seq": self.quarantine_seq, "accepted": self.accepted, "duplicates": self.duplicates,
            "quarantined": self.quarantined, **({"refused_row": self.refused} if self.refused else {}),
        }


# A rule of the platform's database (a CHECK, a NOT NULL, a unique index, a trigger's RAISE, a value its column
# cannot hold) that a site's row breaks. Retrying cannot help, so the row is refused and kept apart (accept_batch);
# any other database failure stays a 5xx the site retries.
RULE_ERRORS = (asyncpg.IntegrityConstraintViolationError, asyncpg.RaiseError, asyncpg.DataError)
ROW_REFUSED = "row_refused"


def rule_of(exc: asyncpg.PostgresError) -> str:
    """The rule a refused row broke, as the platform's database names it (constraint and message)."""
    name = getattr(exc, "constraint_name", None) or getattr(exc, "table_name", None) or ""
    # The primary message only: the DETAIL line repeats the whole row, which the quarantine holds already.
    message = (getattr(exc, "message", None) or str(exc).splitlines()[0]).strip()
    return f"{exc.sqlstate} {name}: {message}"[:500]


async def gate_head(conn: asyncpg.Connection, site_id: int, gate_id: str, *, lock: bool = False) -> asyncpg.Record:
    await conn.execute(
        "INSERT INTO link_gate_heads (gate_id, site_id, seq, hash) VALUES ($1, $2, 0, $3) ON CONFLICT DO NOTHING",
        gate_id, site_id, GENESIS)
    return await conn.fetchrow(
        "SELECT * FROM link_gate_heads WHERE gate_id = $1" + (" FOR UPDATE" if lock else ""), gate_id)


def _outcome(head: asyncpg.Record) -> Outcome:
    return Outcome(head["gate_id"], head["seq"], bytes(head["hash"]), head["chain"], head["first_bad_seq"],
                   head["problem"], head["quarantine_seq"])


def _refresh(head: asyncpg.Record, counted: Outcome) -> Outcome:
    fresh = _outcome(head)
    fresh.accepted, fresh.duplicates, fresh.quarantined = counted.accepted, counted.duplicates, counted.quarantined
    fresh.refused = counted.refused
    return fresh


async def stored_hashes(conn: asyncpg.Connection, gate_id: str, seqs: list[int]) -> dict[int, bytes]:
    # After a resolved break a seq may be held twice (the old epoch's row and the new one's): the newest
    # epoch's is the one the site's history continues from.
    rows = await conn.fetch(
        """SELECT DISTINCT ON (gate_seq) gate_seq, hash FROM passages WHERE gate_id = $1
           AND gate_seq = ANY($2::bigint[]) ORDER BY gate_seq, chain_epoch DESC""", gate_id, seqs)
    return {r["gate_seq"]: bytes(r["hash"]) for r in rows}


async def mark_broken(conn: asyncpg.Connection, gate_id: str, first_bad_seq: int, problem: str) -> None:
    # The first break found is the one kept: a later, larger seq says less about where the history went wrong.
    await conn.execute(
        """UPDATE link_gate_heads SET chain = 'broken', first_bad_seq = $2::bigint, problem = $3, broken_at = now(),
                  quarantine_seq = GREATEST(quarantine_seq, $2::bigint - 1)
           WHERE gate_id = $1 AND chain = 'ok'""",
        gate_id, first_bad_seq, problem)


async def _quarantine(conn: asyncpg.Connection, site_id: int, gate_id: str, rows: list[dict[str, Any]],
                      wire_rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    await conn.executemany(
        """INSERT INTO link_quarantine (site_id, gate_id, gate_seq, hash, prev_hash, row_data)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        [(site_id, gate_id, r["gate_seq"], r["hash"], r["prev_hash"], w) for r, w in zip(rows, wire_rows, strict=True)])
    await conn.execute("UPDATE link_gate_heads SET quarantine_seq = GREATEST(quarantine_seq, $2) WHERE gate_id = $1",
                       gate_id, max(r["gate_seq"] for r in rows))
    return len(rows)


def check_internal(rows: list[dict[str, Any]]) -> tuple[int, str] | None:
    """(seq, problem) of the first row that is not consistent with the one before it or with its own hash."""
    for i, row in enumerate(rows):
        if i and row["gate_seq"] != rows[i - 1]["gate_seq"] + 1:
            return row["gate_seq"], f"batch not contiguous: seq {rows[i - 1]['gate_seq']} then {row['gate_seq']}"
        if i and row["prev_hash"] != rows[i - 1]["hash"]:
            return row["gate_seq"], "prev_hash does not match the previous row"
        if link(row["prev_hash"], row) != row["hash"]:
            return row["gate_seq"], "content does not match its hash (row changed after it was written)"
    return None


async def accept_batch(conn: asyncpg.Connection, site_id: int, gate_id: str, rows: list[dict[str, Any]],
                       wire_rows: list[dict[str, Any]], site_head: tuple[int, bytes] | None,
                       sent_at: datetime | None = None, enterprise_id: str | None = None) -> Outcome:
    """Apply one verified-signature batch of one gate's rows. Call inside a transaction.

    Rows the platform already holds must be identical (a resent batch is acknowledged, not doubled); the next
    new row must continue the acknowledged head. Anything else breaks the chain: the break's first seq is
    recorded and that row and everything after it goes to link_quarantine.
    """
    head = await gate_head(conn, site_id, gate_id, lock=True)
    out = _outcome(head)
    if out.chain == "broken":
        out.quarantined = await _quarantine(conn, site_id, gate_id, rows, wire_rows)
        return _refresh(await gate_head(conn, site_id, gate_id), out)
    bad = check_internal(rows)
    # A site writes only its own enterprise's ledger: a row naming another would land in that enterprise's
    # ledger and reports at the platform. Kept apart like any row that does not fit.
    foreign = next((r for r in rows if r["enterprise_id"] != enterprise_id), None)
    if foreign is not None and (bad is None or foreign["gate_seq"] < bad[0]):
        bad = (foreign["gate_seq"], f"row names enterprise {foreign['enterprise_id']!r}, the gate is "
                                    f"{enterprise_id!r}'s at the platform")
    old = [r for r in rows if r["gate_seq"] <= out.acked_seq]
    stored = await stored_hashes(conn, gate_id, [r["gate_seq"] for r in old]) if old else {}
    cut: int | None = None  # index of the first row that cannot be merged
    problem = ""
    expected, prev = out.acked_seq + 1, out.acked_hash
    for i, row in enumerate(rows):
        seq = row["gate_seq"]
        if bad is not None and seq >= bad[0]:
            cut, problem = i, bad[1]
            break
        if seq < expected:
            if seq in stored and stored[seq] != row["hash"]:
                cut, problem = i, "row differs from the one uploaded before (history rewritten at the site)"
                break
            out.duplicates += 1
            continue
        if seq != expected:
            cut, problem = i, f"gap: expected seq {expected}, got {seq}"
            break
        if row["prev_hash"] != prev:
            cut, problem = i, "prev_hash does not match the head the platform acknowledged"
            break
        expected, prev = seq + 1, row["hash"]
    new = [r for r in rows[: cut if cut is not None else len(rows)] if r["gate_seq"] > out.acked_seq]
    now = datetime.now(timezone.utc)
    refused = await _insert_checked(conn, new, site_id, now, head["epoch"]) if new else None
    if refused is not None:
        # The rows before the refused one are merged; it and everything after it wait in the quarantine: merging
        # later rows past the hole would make the platform's chain skip a seq.
        at, rule = refused
        bad_row = new[at]
        new = new[:at]
        cut = next(i for i, r in enumerate(rows) if r["gate_seq"] == bad_row["gate_seq"])
        problem = f"{ROW_REFUSED} seq {bad_row['gate_seq']}: {rule}"
        out.refused = {"seq": bad_row["gate_seq"], "rule": rule}
    if new:
        last = new[-1]
        await conn.execute(
            "UPDATE link_gate_heads SET seq = $2, hash = $3, acked_at = $4 WHERE gate_id = $1",
            gate_id, last["gate_seq"], last["hash"], now)
        await conn.execute(
            """INSERT INTO gate_chain_heads (gate_id, seq, hash, at) VALUES ($1, $2, $3, $4)
               ON CONFLICT (gate_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, at = EXCLUDED.at""",
            gate_id, last["gate_seq"], last["hash"], last["at"])
        out.accepted = len(new)
        out.acked_seq, out.acked_hash = last["gate_seq"], last["hash"]
    if cut is not None:
        await mark_broken(conn, gate_id, rows[cut]["gate_seq"], problem)
        out.quarantined = await _quarantine(conn, site_id, gate_id, rows[cut:], wire_rows[cut:])
    elif site_head is not None:
        await check_site_head(conn, site_id, gate_id, site_head, out.acked_seq, sent_at)
    return _refresh(await gate_head(conn, site_id, gate_id), out)


async def check_site_head(conn: asyncpg.Connection, site_id: int, gate_id: str, site_head: tuple[int, bytes],
                          acked_seq: int, sent_at: datetime | None) -> None:
    """A site's own head behind what it already uploaded means rows were cut from its ledger."""
    seq, digest = site_head
    if sent_at is not None:
        # The newest statement time (the site's clock) seen from this site: a statement older than that (a request
        # slow to arrive, its sender long gone on to newer batches) may not claim the site's head is behind.
        newest = await conn.fetchval(
            """UPDATE link_sites SET reported = reported || jsonb_build_object('newest_statement_at',
                   GREATEST(COALESCE((reported->>'newest_statement_at')::timestamptz, $2), $2))
               WHERE site_id = $1 RETURNING (reported->>'newest_statement_at')::timestamptz""", site_id, sent_at)
        if newest is not None and newest > sent_at:
            return
    if seq >= acked_seq:
        return
    stored = await stored_hashes(conn, gate_id, [seq]) if seq > 0 else {0: GENESIS}
    if stored.get(seq, GENESIS if seq == 0 else None) == digest:
        await mark_broken(conn, gate_id, seq + 1,
                          f"rows after seq {seq} were removed at the site (the platform holds up to seq {acked_seq})")
    # Otherwise the site's head is a rewritten row: the site resends from its last matching checkpoint and
    # accept_batch finds the first differing seq.


async def _insert_checked(conn: asyncpg.Connection, rows: list[dict[str, Any]], site_id: int, now: datetime,
                         epoch: int) -> tuple[int, str] | None:
    """Insert the rows; when a database rule refuses one, insert only those before it and return (its index, the
    rule). Each attempt runs in a savepoint, so a refusal never aborts the batch's transaction; the row by row
    pass runs only after the whole batch was refused (a batch is ≤ 5000 rows, usually ≤ 500)."""
    try:
        async with conn.transaction():
            await _insert(conn, rows, site_id, now, epoch)
        return None
    except RULE_ERRORS:
        pass
    for i, row in enumerate(rows):
        try:
            async with conn.transaction():
                await _insert(conn, [row], site_id, now, epoch)
        except RULE_ERRORS as exc:
            # Rows i+1… were not inserted: a savepoint per row means the earlier ones stand.
            return i, rule_of(exc)
    return None


async def _insert(conn: asyncpg.Connection, rows: list[dict[str, Any]], site_id: int, now: datetime,
                  epoch: int = 0) -> None:
    # Partitions first (a site's backlog may span months), then one pipelined statement for the batch.
    months = {r["at"].astimezone(timezone.utc).date().replace(day=1) for r in rows}
    for month in sorted(months):
        await ensure_partition(conn, month)
    await conn.executemany(_INSERT, [
        [row.get(name) for name in HASHED_FIELDS] + [row["prev_hash"], row["hash"], site_id, row.get("uploaded_at", now),
                                                      epoch] for row in rows])


async def record_signed_head(conn: asyncpg.Connection, site_id: int, gate_id: str, seq: int, digest: bytes,
                             statement: dict[str, Any], signature: bytes) -> None:
    await conn.execute(
        """INSERT INTO link_signed_heads (site_id, gate_id, seq, hash, statement, signature)
           VALUES ($1, $2, $3, $4, $5, $6)""", site_id, gate_id, seq, digest, statement, signature)


async def checkpoints(conn: asyncpg.Connection | asyncpg.Pool, gate_id: str, limit: int = 2000) -> list[tuple[int, bytes]]:
    """Signed heads the platform accepted into passages, newest first: where a diverged site looks for the last
    row both sides still agree on."""
    rows = await conn.fetch(
        """SELECT DISTINCT p.gate_seq, p.hash FROM link_signed_heads s
           JOIN passages p ON p.gate_id = s.gate_id AND p.gate_seq = s.seq AND p.hash = s.hash
           WHERE s.gate_id = $1 ORDER BY p.gate_seq DESC LIMIT $2""", gate_id, limit)
    return [(r["gate_seq"], bytes(r["hash"])) for r in rows]
