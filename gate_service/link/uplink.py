"""The site's uplink: the ledger is the outbox. Each gate's rows after the platform's acknowledged head are
read, batched, signed and sent; nothing is copied aside, so nothing can diverge from the ledger.

Exactly once follows from the platform's side: it acknowledges a head per gate and treats rows it holds as
duplicates. The site keeps no state that matters: after a restart it asks (sync) and resumes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import datetime, timezone
from typing import Any

import asyncpg

from gate_service.ledger.chain import GENESIS, HASHED_FIELDS
from gate_service.link.adapter import LinkDown, PlatformAdapter, Refused
from gate_service.link.keys import SiteKey
from gate_service.link.status import LinkStatus
from gate_service.link.wire import encode_row, statement_bytes

log = logging.getLogger(__name__)

# Never past the head this step read: the batch's signed site_head must not be older than its own last row (the
# platform would read that as rows cut from the ledger).
_ROWS = f"SELECT {', '.join(HASHED_FIELDS)}, prev_hash, hash FROM passages WHERE gate_id = $1 AND gate_seq >= $2 " \
        "AND gate_seq <= $4 ORDER BY gate_seq LIMIT $3"


class Backoff:
    """Exponential with full jitter: many sites coming back after a platform outage do not arrive in step."""

    def __init__(self, base: float = 0.5, cap: float = 60.0) -> None:
        self.base, self.cap, self.failures = base, cap, 0

    def next(self) -> float:
        self.failures += 1
        return random.uniform(self.base, min(self.cap, self.base * 2 ** self.failures))

    def reset(self) -> None:
        self.failures = 0


class Uplink:
    def __init__(self, pool: asyncpg.Pool, adapter: PlatformAdapter, key: SiteKey, status: LinkStatus, *,
                 batch_size: int = 500, interval: float = 1.0, heartbeat: float = 5.0, max_backoff: float = 60.0,
                 media: Any = None, software: str = "cleangate") -> None:
        self.pool, self.adapter, self.key, self.status = pool, adapter, key, status
        self.batch_size, self.interval, self.heartbeat = batch_size, interval, heartbeat
        self.backoff = Backoff(cap=max_backoff)
        self.media = media
        self.software = software
        self.site_id: int | None = None
        self.gates: dict[str, dict[str, Any]] = {}  # the platform's last answer per gate
        self._last_sync = 0.0
        self._wake = asyncio.Event()
        # gate -> the platform's last definite refusal of a batch of it: shown in /healthz until the gate's chain
        # is whole again at the platform (a refused row) or a batch goes through (any other refusal).
        self.refusals: dict[str, dict[str, Any]] = {}
        self._retry_at: dict[str, float] = {}  # gate -> monotonic time before which no batch is sent again
        self._gate_backoff: dict[str, Backoff] = {}

    def poke(self) -> None:
        """A passage was written: look now rather than at the next tick."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.step()
                self.backoff.reset()
                delay = self.interval
            except LinkDown as exc:
                self.status.down(str(exc))
                delay = self.backoff.next()
            except Refused as exc:
                self.status.down(f"refused: {exc}")
                log.warning("platform refused the site: %s", exc)
                delay = self.backoff.next()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("uplink: local database not available (%s)", exc)
                delay = self.backoff.next()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - an unexpected answer must not end the uplink for good
                log.exception("uplink: unexpected failure; retrying")
                delay = self.backoff.next()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def step(self) -> None:
        if self.site_id is None:
            answer = await self.adapter.enrol(self.key.public_b64, self.software)
            self.site_id = int(answer["site_id"])
            self.status.up()
        heads = await self.local_heads()
        self._count_pending(heads)  # before any network call: an unreachable platform still shows the backlog
        due = time.monotonic() - self._last_sync >= self.heartbeat
        if due or any(g not in self.gates for g in heads):
            await self.sync(heads)
        for gate_id, head in heads.items():
            state = self.gates.get(gate_id)
            if state is None or "refused" in state or self._retry_at.get(gate_id, 0.0) > time.monotonic():
                continue
            try:
                await self.push_gate(gate_id, head, state)
            except Refused as exc:
                self._refused(gate_id, exc)
        self._count_pending(heads)
        for gate_id, state in self.gates.items():
            problem = state.get("problem") or ""
            if problem.startswith("row_refused") and gate_id not in self.refusals:
                # Known from the platform's answer (after a restart the site no longer has the 422 it got).
                self.refusals[gate_id] = {"code": "row_refused", "status": 422, "message": problem, "at": None,
                                          "seq": state.get("first_bad_seq"), "rule": problem.partition(": ")[2]}
            if gate_id in self.refusals and self.refusals[gate_id]["code"] == "row_refused" and \
                    state.get("chain") == "ok":
                del self.refusals[gate_id]  # the bureau resolved the gate's chain at the platform
        self.status.gates = {g: {**{k: s.get(k) for k in ("acked_seq", "chain", "first_bad_seq", "refused")},
                                 **({"refused_row": self.refusals[g]} if g in self.refusals else {})}
                             for g, s in self.gates.items()}
        if self.media is not None:
            await self.media.push(self)

    def _refused(self, gate_id: str, exc: Refused) -> None:
        """The platform said no to a batch of this gate: recorded, never resent in a loop.

        ``row_refused``: the platform kept the refused row and the batch's later rows apart (its answer carries the
        gate's state, quarantine_seq past them), so the next batch starts after them and no row is sent twice.
        Any other refusal: this gate waits a growing pause (the others go on), and the refusal stays visible."""
        first = gate_id not in self.refusals or self.refusals[gate_id]["code"] != exc.code
        self.refusals[gate_id] = {"code": exc.code, "status": exc.status, "message": exc.message,
                                  "seq": exc.detail.get("seq"), "rule": exc.detail.get("rule"), "at": _now()}
        if first:
            log.warning("platform refused a batch of gate %s: %s", gate_id, exc)
        gate = exc.detail.get("gate")
        if exc.code == "row_refused" and isinstance(gate, dict) and gate.get("chain") == "broken":
            self.gates[gate_id] = gate
            return
        backoff = self._gate_backoff.setdefault(gate_id, Backoff(cap=self.backoff.cap))
        self._retry_at[gate_id] = time.monotonic() + backoff.next()

    def _count_pending(self, heads: dict[str, tuple[int, bytes]]) -> None:
        self.status.pending = {g: max(0, heads[g][0] - self._sent_upto(g)) for g in heads
                               if "refused" not in self.gates.get(g, {})}

    async def local_heads(self) -> dict[str, tuple[int, bytes]]:
        rows = await self.pool.fetch("SELECT gate_id, seq, hash FROM gate_chain_heads WHERE seq > 0")
        return {r["gate_id"]: (r["seq"], bytes(r["hash"])) for r in rows}

    def _sent_upto(self, gate_id: str) -> int:
        s = self.gates.get(gate_id, {})
        return max(s.get("acked_seq", 0), s.get("quarantine_seq", 0) if s.get("chain") == "broken" else 0)

    def _sign(self, statement: dict[str, Any]) -> bytes:
        return self.key.sign(statement_bytes(statement))

    async def sync(self, heads: dict[str, tuple[int, bytes]]) -> None:
        statement = {"kind": "sync", "site_id": self.site_id, "sent_at": _now(),
                     "heads": {g: [s, h.hex()] for g, (s, h) in heads.items()}}
        answer = await self.adapter.sync(statement, self._sign(statement))
        self._last_sync = time.monotonic()
        self.status.up(answer.get("downlink"))
        for gate_id, state in answer.get("gates", {}).items():
            if "refused" in state and state.get("refused") not in (self.gates.get(gate_id) or {}).values():
                log.warning("platform refuses gate %s: %s", gate_id, state.get("message"))
            self.gates[gate_id] = state

    async def push_gate(self, gate_id: str, head: tuple[int, bytes], state: dict[str, Any]) -> None:
        start = await self._start(gate_id, head, state)
        while start is not None and start <= head[0]:
            rows = await self.pool.fetch(_ROWS, gate_id, start, self.batch_size, head[0])
            if not rows:
                return
            wire = [encode_row(r) for r in rows]
            statement = {"kind": "batch", "site_id": self.site_id, "gate_id": gate_id, "first": rows[0]["gate_seq"],
                         "last": [rows[-1]["gate_seq"], bytes(rows[-1]["hash"]).hex()],
                         "site_head": [head[0], head[1].hex()], "sent_at": _now()}
            answer = await self.adapter.send_batch(wire, statement, self._sign(statement))
            self.gates[gate_id] = state = answer
            if gate_id in self._gate_backoff:
                self._gate_backoff.pop(gate_id).reset()
                self._retry_at.pop(gate_id, None)
                if self.refusals.get(gate_id, {}).get("code") != "row_refused":
                    self.refusals.pop(gate_id, None)
            self.status.up()
            if answer["chain"] == "broken":
                start = max(answer["quarantine_seq"], rows[-1]["gate_seq"]) + 1
            else:
                start = max(answer["acked_seq"], rows[-1]["gate_seq"]) + 1

    async def _start(self, gate_id: str, head: tuple[int, bytes], state: dict[str, Any]) -> int | None:
        """Where this gate's next batch begins, or None when there is nothing to send."""
        if state.get("chain") == "broken":
            return state["quarantine_seq"] + 1
        acked, acked_hash = state["acked_seq"], bytes.fromhex(state["acked_hash"])
        if acked == 0:
            return 1
        mine = await self.pool.fetchval("SELECT hash FROM passages WHERE gate_id = $1 AND gate_seq = $2",
                                        gate_id, acked)
        if mine is not None and bytes(mine) == acked_hash:
            return acked + 1 if head[0] > acked else None
        # This ledger no longer holds what the platform acknowledged. Resend from the newest row both sides still
        # agree on; the platform then names the first differing seq (a cut tail alone it sees from the head).
        return await self._resume_point(gate_id)

    async def _resume_point(self, gate_id: str) -> int:
        cps = await self.adapter.checkpoints(gate_id)
        if not cps:
            return 1
        mine = {r["gate_seq"]: bytes(r["hash"]) for r in await self.pool.fetch(
            "SELECT gate_seq, hash FROM passages WHERE gate_id = $1 AND gate_seq = ANY($2::bigint[])",
            gate_id, [s for s, _ in cps])}
        for seq, digest in cps:  # newest first
            if mine.get(seq) == digest:
                return seq + 1
        return 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


__all__ = ["Uplink", "Backoff", "GENESIS"]
