"""From a plate at a gate to a recorded decision: gather the facts, decide, append to the ledger."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from gate_service.db.outage import DB_DOWN, is_db_down
from gate_service.errors import ApiError, not_found
from gate_service.ledger import store as ledger
from gate_service.passages.facts import FactsCache, strongest_alert
from gate_service.passages.spool import Spool
from gate_service.policy import BlacklistEntry, Decision, Enterprise, Gate, PolicySet, Vehicle, decide
from gate_service.registry import store as registry

log = logging.getLogger(__name__)

# A kiosk that was offline may send late, within this window; never from the future (clock skew aside).
KIOSK_LATE_WINDOW = timedelta(days=7)
CLOCK_SKEW = timedelta(minutes=2)
# A passage dated further back than this is judged by the facts of its moment, read from the database (the
# registry's vehicle_versions, the blacklist's entries and events, alerts with their cancellation); a live one
# by the facts in memory, which are those of now. Camera reads and kiosks on a good link are seconds old.
AS_OF_AFTER = timedelta(minutes=5)


def is_history(at: datetime) -> bool:
    """A passage judged by the facts of its moment (in the database), not the in-memory ones of now."""
    return at < datetime.now(timezone.utc) - AS_OF_AFTER


@dataclass
class PassageInput:
    gate_id: str
    plate: str
    direction: str
    at: datetime
    source: str = "manual"
    plate_color: str | None = None
    cargo: str | None = None
    tonnes: float | None = None
    client_ref: str | None = None
    read: dict[str, Any] | None = None
    snapshot_ref: str | None = None
    crop_ref: str | None = None
    video_segment_id: int | None = None
    video_offset_ms: int | None = None
    overrides: UUID | None = None
    override_reason: str | None = None
    extra_flags: list[str] = field(default_factory=list)
    # sha256 (hex) of what the client sent with client_ref: a retry must send the same (body_hash()).
    body_hash: str | None = None


def body_hash(body: Any) -> str:
    """The hash a client_ref is bound to: of the body's content, whatever its key order or spacing."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def client_ref_conflict(client_ref: str) -> ApiError:
    return ApiError(409, "client_ref_conflict",
                    f"client_ref {client_ref} 已用于另一条不同内容的通行记录 / client_ref {client_ref} was already "
                    "used with a different body; a retry must send the same body", field="client_ref")


def check_moment(at: datetime, *, role: str, now: datetime | None = None, field: str = "at") -> None:
    now = now or datetime.now(timezone.utc)
    if at > now + CLOCK_SKEW:
        raise ApiError(422, "time_in_future", f"通行时间不能晚于当前时间 / '{field}' is in the future", field=field)
    if role != "admin" and at < now - KIOSK_LATE_WINDOW:
        raise ApiError(422, "time_too_old",
                       f"终端补传不得早于 {KIOSK_LATE_WINDOW.days} 天前 / a kiosk may send at most "
                       f"{KIOSK_LATE_WINDOW.days} days late", field=field)


async def alert_level_at(conn: asyncpg.Connection | asyncpg.Pool, at: datetime) -> str | None:
    """The alert level in force at a moment: alerts whose period covers it and that had not been cancelled by
    then (a cancellation ends an alert from that moment on; it does not undo the days it was in force). An
    alert's declared period is its own statement of when it applies, so one declared afterwards for a past
    period (the bureau entering its record) counts for that period."""
    levels = await conn.fetch(
        """SELECT level FROM alerts
           WHERE starts_at <= $1 AND ends_at > $1 AND (cancelled_at IS NULL OR cancelled_at > $1)""", at
    )
    return strongest_alert(r["level"] for r in levels)


def vehicle_facts(row: dict | None, plate: str, observed_color: str | None) -> tuple[Vehicle, dict | None]:
    if row is None:
        return Vehicle(plate=plate, plate_color=observed_color, registered=False), None
    facts = {k: row[k] for k in ("plate", "plate_color", "vin", "engine_no", "emission_stage", "fuel_type",
                                 "vehicle_class", "registered_on", "haulier")}
    if isinstance(facts["registered_on"], date):
        facts["registered_on"] = facts["registered_on"].isoformat()
    vehicle = Vehicle(
        plate=plate, plate_color=row["plate_color"], emission_stage=row["emission_stage"],
        fuel_type=row["fuel_type"], vehicle_class=row["vehicle_class"], registered=True,
    )
    return vehicle, facts


@dataclass
class Judged:
    row: dict[str, Any]
    decision: Decision
    vehicle: dict | None

    def response(self) -> dict[str, Any]:
        d = self.decision.to_json()
        return {
            "passage_id": str(self.row["id"]),
            "gate_id": self.row["gate_id"],
            "plate": self.row["plate"],
            "direction": self.row["direction"],
            "at": self.row["at"].isoformat(),
            "decision": d["decision"],
            "reasons": d["reasons"],
            "flags": d["flags"],
            "policy_id": d["policy_id"],
            "policy_document": d["policy_document"],
            "alert_level": self.row["alert_level"],
            "blacklisted": self.row["blacklisted"],
            "vehicle": self.vehicle,
            "seq": self.row.get("gate_seq"),  # None while the passage waits in the spool
            "overrides": str(self.row["overrides"]) if self.row["overrides"] else None,
        }


class Judge:
    """Decides and records passages. One per application; safe for concurrent use.

    With the database down, it decides from the remembered registry (``FactsCache``) and appends to the
    local spool (``Spool``); ``drain_spool`` writes those rows to the ledger once the database is back.
    While a gate has spooled rows, its new passages queue behind them, so each gate's chain keeps its order.
    """

    def __init__(self, pool: asyncpg.Pool, policies: PolicySet, blacklist: Any | None = None, metrics: Any = None,
                 *, facts: FactsCache | None = None, spool: Spool | None = None):
        self.pool = pool
        self.policies = policies
        self.blacklist = blacklist
        self.metrics = metrics
        self.facts = facts or FactsCache()
        self.spool = spool

    def _blacklist_entry(self, plate: str, at: datetime) -> BlacklistEntry | None:
        if self.blacklist is None:
            return None
        entry = self.blacklist.lookup(plate, at)
        if entry is None or (getattr(entry, "added_at", None) is not None and entry.added_at > at):
            return None  # listed after the moment: not a fact of that moment
        return BlacklistEntry(plate=entry.plate, reason=entry.reason, valid_until=entry.valid_until)

    async def _blacklist_as_of(self, conn: asyncpg.Connection, plate: str, at: datetime) -> BlacklistEntry | None:
        as_of = getattr(self.blacklist, "lookup_as_of", None)
        if as_of is None:
            return self._blacklist_entry(plate, at)
        entry = await as_of(plate, at, conn)
        if entry is None:
            return None
        return BlacklistEntry(plate=entry.plate, reason=entry.reason, valid_until=entry.valid_until)

    def would_deny(self, gate_id: str, plate: str, at: datetime) -> bool:
        """The decision this gate would make, from the facts in memory only (no I/O: the gate tracker asks it on
        every weak read). A guess: the recorded decision is made by ``record`` on the database's facts."""
        gate_row = self.facts.gates.get(gate_id)
        if gate_row is None:
            return False
        enterprise_row = self.facts.enterprises.get(gate_row["enterprise_id"]) if gate_row["enterprise_id"] else None
        vehicle, _ = vehicle_facts(self.facts.vehicles.get(plate), plate, None)
        alert = strongest_alert(level for start, end, level in self.facts.alerts if start <= at < end)
        decision = decide(
            vehicle, Gate(id=gate_row["id"], zone_id=gate_row["zone_id"], enterprise_id=gate_row["enterprise_id"]),
            Enterprise.from_row(enterprise_row) if enterprise_row else None, self._blacklist_entry(plate, at), alert,
            at, self.policies.policy_for(at),
        )
        return decision.decision == "deny"

    async def record(self, item: PassageInput, *, token_id: int | None, actor: str) -> Judged:
        if item.client_ref and self.spool is not None:
            waiting = self.spool.answer_for(item.gate_id, item.client_ref)
            if waiting is not None:
                _check_binding(item, self.spool.hash_for(item.gate_id, item.client_ref))
                return _Replayed(waiting)  # type: ignore[return-value]
        if self.spool is not None and self.spool.has_pending(item.gate_id):
            # Keep the gate's order: behind what already waits. Try to drain first.
            try:
                await self.drain_spool()
            except DB_DOWN as exc:
                if not is_db_down(exc):
                    raise
        if self.spool is None or not self.spool.has_pending(item.gate_id):
            try:
                return await self._record_online(item, token_id, actor)
            except DB_DOWN as exc:
                if self.spool is None or not is_db_down(exc):
                    raise
                log.warning("database unreachable (%s); passage at %s goes to the spool", exc, item.gate_id)
        return await self._record_offline(item, token_id, actor)

    async def _judge(self, conn: asyncpg.Connection | None, item: PassageInput, token_id: int | None,
                     actor: str) -> tuple[dict[str, Any], Decision, dict | None]:
        gate_row = await self.facts.gate(conn, item.gate_id)
        if gate_row is None:
            if conn is None:
                raise ApiError(503, "database_unavailable", "数据库不可用且本门岗未缓存 / database down and gate unknown",
                               headers={"Retry-After": "5"})
            raise not_found("门岗 gate", item.gate_id)
        enterprise_row = await self.facts.enterprise(conn, gate_row["enterprise_id"])
        if conn is not None and is_history(item.at):
            # History is judged by the facts of its moment, not today's (issue 15 item 14).
            vehicle_row = await registry.vehicle_as_of(conn, item.plate, item.at)
            alert = await alert_level_at(conn, item.at)
            blacklisted = await self._blacklist_as_of(conn, item.plate, item.at)
        else:
            vehicle_row = await self.facts.vehicle(conn, item.plate)
            alert = await self.facts.alert_level(conn, item.at)
            blacklisted = self._blacklist_entry(item.plate, item.at)
        vehicle, facts = vehicle_facts(vehicle_row, item.plate, item.plate_color)
        policy = self.policies.policy_for(item.at)
        decision = decide(
            vehicle,
            Gate(id=gate_row["id"], zone_id=gate_row["zone_id"], enterprise_id=gate_row["enterprise_id"]),
            Enterprise.from_row(enterprise_row) if enterprise_row else None, blacklisted, alert, item.at, policy,
            observed_plate_color=item.plate_color,
        )
        if item.overrides is not None:
            decision = Decision("allow", decision.reasons, decision.policy_id, decision.policy_document)
        row = {
            # Chosen here, not by the database: a retried write of the same passage is recognisable.
            "id": uuid4(),
            "at": item.at,
            "recorded_at": datetime.now(timezone.utc),
            "gate_id": gate_row["id"],
            "enterprise_id": gate_row["enterprise_id"],
            "zone_id": gate_row["zone_id"],
            "direction": item.direction,
            "plate": item.plate,
            "plate_color": item.plate_color or (vehicle_row or {}).get("plate_color"),
            "source": item.source,
            "read": item.read,
            "vehicle": facts,
            "registered": vehicle_row is not None,
            "emission_stage": vehicle.emission_stage,
            "fuel_type": vehicle.fuel_type,
            "vehicle_class": vehicle.vehicle_class,
            "cargo": item.cargo,
            "tonnes": None if item.tonnes is None else _tonnes(item.tonnes),
            "decision": decision.decision,
            "reasons": [r.to_json() for r in decision.reasons],
            "rules": list(decision.rule_ids),
            "policy_id": decision.policy_id,
            "alert_level": alert,
            "blacklisted": blacklisted is not None,
            "clean": vehicle_row is not None and policy.is_clean(vehicle.fuel_type),
            "snapshot_ref": item.snapshot_ref,
            "crop_ref": item.crop_ref,
            "video_segment_id": item.video_segment_id,
            "video_offset_ms": item.video_offset_ms,
            "overrides": item.overrides,
            "override_reason": item.override_reason,
            "token_id": token_id,
            "actor": actor,
            "client_ref": item.client_ref,
            # Not a ledger column (not hashed either): kept with the first answer in passage_refs / the spool.
            "body_hash": item.body_hash,
        }
        return row, decision, facts

    async def _record_online(self, item: PassageInput, token_id: int | None, actor: str) -> Judged:
        async with self.pool.acquire() as conn:
            if item.client_ref:
                earlier = await _earlier_answer(conn, item)
                if earlier is not None:
                    return earlier
            row, decision, facts = await self._judge(conn, item, token_id, actor)
            try:
                judged = await self._write(conn, row, decision, facts)
            except _LostRace:
                first = await _earlier_answer(conn, item)
                assert first is not None
                return first
        self._count(item, decision)
        return judged

    async def _record_offline(self, item: PassageInput, token_id: int | None, actor: str) -> Judged:
        assert self.spool is not None
        row, decision, facts = await self._judge(None, item, token_id, actor)
        judged = Judged(row, decision, facts)
        response = {**judged.response(), "spooled": True}
        history = is_history(item.at)
        if history:
            # Only today's facts are in memory; those of the passage's moment (the blacklist as it was, the
            # registry's versions, the alert then) are in the database. The answer now is provisional and
            # says so; the ledger gets the decision by the facts of the moment when the spool drains.
            response["provisional"] = True
        await self.spool.append(row, response, rejudge=_input_json(item) if history else None)
        if self.metrics is not None:
            self.metrics.spooled.inc(gate=item.gate_id)
        self._count(item, decision)
        return _Replayed(response, replayed=False)  # type: ignore[return-value]

    def _count(self, item: PassageInput, decision: Decision) -> None:
        if self.metrics is not None:
            self.metrics.passages.inc(decision=decision.decision, gate=item.gate_id)
            for reason in decision.reasons:
                self.metrics.decisions_by_rule.inc(rule=reason.rule, effect=reason.effect)

    async def _write(self, conn: asyncpg.Connection, row: dict[str, Any], decision: Decision,
                     facts: dict | None, response: dict[str, Any] | None = None) -> Judged:
        async with conn.transaction():
            written = await ledger.append(conn, row)
            judged = Judged(written, decision, facts)
            if row.get("client_ref"):
                digest = row.get("body_hash")
                inserted = await conn.fetchval(
                    """INSERT INTO passage_refs (gate_id, client_ref, passage_id, at, response, body_hash)
                       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1""",
                    row["gate_id"], row["client_ref"], written["id"], row["at"], response or judged.response(),
                    bytes.fromhex(digest) if digest else None,
                )
                if inserted is None:
                    # A concurrent retry won the race: undo ours, answer with the first.
                    raise _LostRace()
        return judged

    async def drain_spool(self) -> int:
        """Write spooled passages to the ledger, in order, each exactly once."""
        if self.spool is None or not self.spool.has_pending():
            return 0

        async def write(row: dict[str, Any], response: dict[str, Any] | None, rejudge: dict | None) -> bool:
            async with self.pool.acquire() as conn:
                if await conn.fetchval("SELECT 1 FROM passages WHERE id = $1 AND at = $2", row["id"], row["at"]):
                    return False
                decision, facts = _NO_DECISION, None
                if rejudge is not None:
                    # Decided again by the facts of its moment; the id the kiosk was given stays, and a retry
                    # of its client_ref gets the ledger's answer, not the provisional one.
                    fresh, decision, facts = await self._judge(conn, _input_from_json(rejudge), row["token_id"],
                                                               row["actor"])
                    row, response = {**fresh, "id": row["id"], "recorded_at": row["recorded_at"]}, None
                try:
                    await self._write(conn, dict(row), decision, facts, response)
                except _LostRace:
                    return False
                return True

        replayed = await self.spool.drain(write)
        if replayed:
            log.info("replayed %d spooled passages into the ledger", replayed)
        return replayed


_NO_DECISION = Decision("allow", (), "")


def _input_json(item: PassageInput) -> dict[str, Any]:
    return dataclasses.asdict(item)


def _input_from_json(data: dict[str, Any]) -> PassageInput:
    fields = dict(data)
    fields["at"] = datetime.fromisoformat(fields["at"]) if isinstance(fields["at"], str) else fields["at"]
    if fields.get("overrides") is not None:
        fields["overrides"] = UUID(str(fields["overrides"]))
    if fields.get("tonnes") is not None:
        fields["tonnes"] = float(fields["tonnes"])
    return PassageInput(**fields)


def _check_binding(item: PassageInput, first_hash: str | None) -> None:
    # Answers recorded before bodies were hashed carry none: they replay as they always did.
    if first_hash is not None and item.body_hash is not None and first_hash != item.body_hash:
        raise client_ref_conflict(item.client_ref or "")


async def _earlier_answer(conn: asyncpg.Connection, item: PassageInput) -> Judged | None:
    earlier = await conn.fetchrow(
        "SELECT response, body_hash FROM passage_refs WHERE gate_id = $1 AND client_ref = $2",
        item.gate_id, item.client_ref,
    )
    if earlier is None:
        return None
    _check_binding(item, bytes(earlier["body_hash"]).hex() if earlier["body_hash"] is not None else None)
    return _Replayed(earlier["response"])  # type: ignore[return-value]


class _LostRace(Exception):
    pass


class _Replayed:
    """An answer made before: the first answer to a retried client_ref, or a spooled passage's."""

    def __init__(self, response: dict[str, Any], *, replayed: bool = True) -> None:
        self._response = {**response, "replayed": True} if replayed else response

    def response(self) -> dict[str, Any]:
        return self._response


def _tonnes(value: float) -> Any:
    from decimal import ROUND_HALF_UP, Decimal

    return Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
