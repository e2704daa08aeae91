"""From a plate at a gate to a recorded decision: gather the facts, decide, append to the ledger."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import asyncpg

from gate_service.errors import ApiError, not_found
from gate_service.ledger import store as ledger
from gate_service.policy import BlacklistEntry, Decision, Enterprise, Gate, PolicySet, Vehicle, decide
from gate_service.registry import store as registry

log = logging.getLogger(__name__)

# A kiosk that was offline may send late, within this window; never from the future (clock skew aside).
KIOSK_LATE_WINDOW = timedelta(days=7)
CLOCK_SKEW = timedelta(minutes=2)
_SEVERITY = {"yellow": 1, "orange": 2, "red": 3}


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


def check_moment(at: datetime, *, role: str, now: datetime | None = None) -> None:
    now = now or datetime.now(timezone.utc)
    if at > now + CLOCK_SKEW:
        raise ApiError(422, "time_in_future", "通行时间不能晚于当前时间 / 'at' is in the future", field="at")
    if role != "admin" and at < now - KIOSK_LATE_WINDOW:
        raise ApiError(422, "time_too_old",
                       f"终端补传不得早于 {KIOSK_LATE_WINDOW.days} 天前 / a kiosk may send at most "
                       f"{KIOSK_LATE_WINDOW.days} days late", field="at")


async def alert_level_at(conn: asyncpg.Connection | asyncpg.Pool, at: datetime) -> str | None:
    levels = await conn.fetch(
        "SELECT level FROM alerts WHERE starts_at <= $1 AND ends_at > $1 AND cancelled_at IS NULL", at
    )
    return max((r["level"] for r in levels), key=_SEVERITY.__getitem__, default=None)


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


def _enterprise(row: dict | None) -> Enterprise | None:
    if row is None:
        return None
    return Enterprise(id=row["id"], industry=row["industry"], county=row["county"], zone_id=row["zone_id"],
                      retrofit_completed_on=row["retrofit_completed_on"], grade=row["grade"])


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
            "seq": self.row["gate_seq"],
            "overrides": str(self.row["overrides"]) if self.row["overrides"] else None,
        }


class Judge:
    """Decides and records passages. One per application; safe for concurrent use."""

    def __init__(self, pool: asyncpg.Pool, policies: PolicySet, blacklist: Any | None = None, metrics: Any = None):
        self.pool = pool
        self.policies = policies
        self.blacklist = blacklist
        self.metrics = metrics

    def _blacklist_entry(self, plate: str, at: datetime) -> BlacklistEntry | None:
        if self.blacklist is None:
            return None
        entry = self.blacklist.lookup(plate, at)
        if entry is None:
            return None
        return BlacklistEntry(plate=entry.plate, reason=entry.reason, valid_until=entry.valid_until)

    async def record(self, item: PassageInput, *, token_id: int | None, actor: str) -> Judged:
        async with self.pool.acquire() as conn:
            if item.client_ref:
                earlier = await conn.fetchval(
                    "SELECT response FROM passage_refs WHERE gate_id = $1 AND client_ref = $2",
                    item.gate_id, item.client_ref,
                )
                if earlier is not None:
                    return _Replayed(earlier)  # type: ignore[return-value]
            gate_row = await registry.get_gate(conn, item.gate_id)
            if gate_row is None:
                raise not_found("门岗 gate", item.gate_id)
            enterprise_row = (
                await registry.get_enterprise(conn, gate_row["enterprise_id"]) if gate_row["enterprise_id"] else None
            )
            vehicle_row = await registry.get_vehicle(conn, item.plate)
            alert = await alert_level_at(conn, item.at)
            vehicle, facts = vehicle_facts(vehicle_row, item.plate, item.plate_color)
            blacklisted = self._blacklist_entry(item.plate, item.at)
            policy = self.policies.policy_for(item.at)
            decision = decide(
                vehicle,
                Gate(id=gate_row["id"], zone_id=gate_row["zone_id"], enterprise_id=gate_row["enterprise_id"]),
                _enterprise(enterprise_row), blacklisted, alert, item.at, policy,
                observed_plate_color=item.plate_color,
            )
            if item.overrides is not None:
                decision = Decision("allow", decision.reasons, decision.policy_id, decision.policy_document)
            row = {
                "at": item.at,
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
            }
            try:
                judged = await self._write(conn, item, row, decision, facts)
            except _LostRace:
                first = await conn.fetchval(
                    "SELECT response FROM passage_refs WHERE gate_id = $1 AND client_ref = $2",
                    item.gate_id, item.client_ref,
                )
                return _Replayed(first)  # type: ignore[return-value]
        if self.metrics is not None:
            self.metrics.passages.inc(decision=decision.decision, gate=item.gate_id)
            for reason in decision.reasons:
                self.metrics.decisions_by_rule.inc(rule=reason.rule, effect=reason.effect)
        return judged

    async def _write(self, conn: asyncpg.Connection, item: PassageInput, row: dict[str, Any],
                 decision: Decision, facts: dict | None) -> Judged:
        async with conn.transaction():
            written = await ledger.append(conn, row)
            judged = Judged(written, decision, facts)
            if item.client_ref:
                inserted = await conn.fetchval(
                    """INSERT INTO passage_refs (gate_id, client_ref, passage_id, at, response)
                       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1""",
                    item.gate_id, item.client_ref, written["id"], item.at, judged.response(),
                )
                if inserted is None:
                    # A concurrent retry won the race: undo ours, answer with the first.
                    raise _LostRace()
        return judged


class _LostRace(Exception):
    pass


class _Replayed:
    """The stored first answer to a retried client_ref."""

    def __init__(self, response: dict[str, Any]) -> None:
        self._response = {**response, "replayed": True}

    def response(self) -> dict[str, Any]:
        return self._response


def _tonnes(value: float) -> Any:
    from decimal import ROUND_HALF_UP, Decimal

    return Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
