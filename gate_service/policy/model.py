"""Plain values the policy engine works on.

The service maps its database rows into these frozen dataclasses; the engine never sees a row, a
connection or a clock, so every decision can be reproduced from the values alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, Literal

from gate_service import vocab

# Vocabularies of API.md, from the one place that defines them (``gate_service.vocab`` imports nothing, so the
# engine and the policy checker stay importable on their own, e.g. by the replay tool).
ZONES: dict[str, str] = vocab.ZONES
ZONE_KINDS = ("development_zone", "city", "other")
FUEL_TYPES = tuple(vocab.FUEL_TYPES)
VEHICLE_CLASSES = tuple(vocab.VEHICLE_CLASSES)
# Industries are open-ended in API.md ("…"); unknown ones are only a warning in the checker.
KNOWN_INDUSTRIES = tuple(vocab.INDUSTRIES)
GRADES = tuple(vocab.GRADES)
ALERT_LEVELS = tuple(vocab.ALERT_LEVELS)
PLATE_COLORS = tuple(vocab.PLATE_COLORS)
# The 17 county-level divisions of Linfen; a county outside this list is a warning, not an error.
LINFEN_COUNTIES = (
    "尧都区", "侯马市", "霍州市", "曲沃县", "翼城县", "襄汾县", "洪洞县", "古县", "安泽县",
    "浮山县", "吉县", "乡宁县", "大宁县", "隰县", "永和县", "蒲县", "汾西县",
)

Effect = Literal["deny", "flag"]
AlertLevel = Literal["yellow", "orange", "red"] | None


@dataclass(frozen=True)
class Vehicle:
    """A vehicle as the registry knows it (or, with ``registered=False``, only as read at the gate).

    For an unregistered vehicle pass ``registered=False`` with the plate read and the colour seen, so the
    engine can judge it by what the plate itself shows; ``vehicle=None`` in ``decide`` means "nothing known".
    """

    plate: str
    plate_color: str | None = None
    emission_stage: int | None = None
    fuel_type: str | None = None
    vehicle_class: str | None = None
    registered: bool = True


@dataclass(frozen=True)
class Gate:
    id: str
    zone_id: str
    enterprise_id: str | None = None  # None = city checkpoint

    @property
    def is_checkpoint(self) -> bool:
        return self.enterprise_id is None


@dataclass(frozen=True)
class Enterprise:
    id: str
    industry: str
    county: str | None = None
    zone_id: str | None = None
    retrofit_completed_on: date | None = None
    grade: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Enterprise:
        """From a registry row (or any mapping with the registry's column names)."""
        return cls(id=row["id"], industry=row["industry"], county=row["county"], zone_id=row["zone_id"],
                   retrofit_completed_on=row["retrofit_completed_on"], grade=row["grade"])


@dataclass(frozen=True)
class BlacklistEntry:
    plate: str
    reason: str
    valid_until: date | None = None  # None = until revoked; the service passes only unrevoked entries

    def in_force_on(self, day: date) -> bool:
        # valid_until is the last day the entry still applies (a local day, like the campaign days).
        return self.valid_until is None or day <= self.valid_until


@dataclass(frozen=True)
class Reason:
    rule: str
    clause: str
    message: str
    message_en: str
    effect: Effect
    document: str = ""  # the document the clause belongs to, e.g. 临政办发〔2024〕40号

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "clause": self.clause,
            "message": self.message,
            "message_en": self.message_en,
            "effect": self.effect,
            "document": self.document,
        }


@dataclass(frozen=True)
class Decision:
    decision: Literal["allow", "deny"]
    reasons: tuple[Reason, ...]
    policy_id: str
    policy_document: str = ""

    @property
    def denied(self) -> bool:
        return self.decision == "deny"

    @property
    def denials(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.effect == "deny")

    @property
    def flags(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.effect == "flag")

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(r.rule for r in self.reasons)

    def to_json(self) -> dict[str, Any]:
        """API shape: ``decision`` and ``reasons`` as in API.md, plus ``policy_id`` and ``flags``."""
        return {
            "decision": self.decision,
            "reasons": [r.to_json() for r in self.reasons],
            "flags": [r.rule for r in self.flags],
            "policy_id": self.policy_id,
            "policy_document": self.policy_document,
        }

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False)


@dataclass(frozen=True)
class Period:
    """A named span of local days, both ends inclusive."""

    name: str
    start: date
    end: date

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    kind: str


@dataclass(frozen=True)
class Target:
    """A clean-transport share the plan sets for some industries (and counties) over a window of days."""

    ratio: float
    industries: tuple[str, ...]
    counties: tuple[str, ...] | None  # None = every county
    start: date | None  # None = open
    end: date | None
    clause: str
    note: str = ""

    def applies(self, industry: str, county: str | None, period_from: date, period_to: date) -> bool:
        if industry not in self.industries:
            return False
        if self.counties is not None and county not in self.counties:
            return False
        # The report period must lie inside the target's window: a period that straddles the end of
        # 2024 is judged neither by the 2024 share nor by a 2025 one (issue 7: "for periods up to ...").
        if self.start is not None and period_from < self.start:
            return False
        if self.end is not None and period_to > self.end:
            return False
        return True


@dataclass(frozen=True)
class Condition:
    """One generic test of a rule (``key = value`` in the file), bound to its evaluator."""

    key: str
    value: Any
    test: Callable[[Any, Any], bool] = field(compare=False, repr=False)


@dataclass(frozen=True)
class Rule:
    id: str
    clause: str
    document: str
    effect: Effect
    message: str
    message_en: str
    scope: tuple[Condition, ...]
    match: tuple[Condition, ...]
    note: str = ""

    def reason(self) -> Reason:
        return Reason(self.id, self.clause, self.message, self.message_en, self.effect, self.document)


SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


def period_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """The local days first..last (both included) as a half-open span of moments [start, end)."""
    start = datetime.combine(first, time.min, SHANGHAI)
    return start, start + timedelta(days=(last - first).days + 1)


def zone_for(name: str) -> tzinfo:
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    except ImportError:  # pragma: no cover
        pass
    if name == "Asia/Shanghai":
        # China has kept UTC+8 without DST since 1991, so a fixed offset is exact for every date we judge.
        return SHANGHAI
    raise ValueError(f"unknown time zone {name!r}")


@dataclass(frozen=True)
class Policy:
    """One plan file, loaded. ``kind="base"`` is the no-campaign fallback with no effective dates."""

    id: str
    title: str
    document: str
    kind: Literal["plan", "base"]
    effective_from: date | None
    effective_until: date | None
    timezone: str
    periods: Mapping[str, tuple[Period, ...]]
    zones: Mapping[str, Zone]
    settings: Mapping[str, Any]
    new_energy_fuels: frozenset[str]
    clean_fuels: frozenset[str]
    targets: tuple[Target, ...]
    rules: tuple[Rule, ...]
    source: str = ""

    def local_day(self, moment: datetime) -> date:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("moment must be timezone-aware (campaign days are Asia/Shanghai days)")
        return moment.astimezone(zone_for(self.timezone)).date()

    def in_force_on(self, day: date) -> bool:
        if self.kind == "base":
            return False
        assert self.effective_from is not None and self.effective_until is not None
        return self.effective_from <= day <= self.effective_until

    def in_period(self, name: str, day: date) -> bool:
        return any(p.contains(day) for p in self.periods.get(name, ()))

    def is_clean(self, fuel_type: str | None) -> bool:
        """Whether a vehicle of this fuel counts toward the clean-transport share (issue 7)."""
        return fuel_type is not None and fuel_type in self.clean_fuels

    def is_new_energy(self, fuel_type: str | None) -> bool:
        return fuel_type is not None and fuel_type in self.new_energy_fuels

    def target_for(
        self, industry: str, county: str | None, period_from: date, period_to: date
    ) -> float | None:
        """The clean-transport share the plan sets for this enterprise over the whole period, or None.

        The period must lie inside a target's window; where several targets fit, the strictest wins.
        """
        found = [t.ratio for t in self.targets if t.applies(industry, county, period_from, period_to)]
        return max(found) if found else None

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)
