"""The gate decision: a pure function of plain values and one loaded policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .model import (
    ALERT_LEVELS,
    FUEL_TYPES,
    VEHICLE_CLASSES,
    BlacklistEntry,
    Decision,
    Enterprise,
    Gate,
    Policy,
    Vehicle,
)

_ALL_FUELS = frozenset(FUEL_TYPES)
_ALL_CLASSES = frozenset(VEHICLE_CLASSES)
# GA 36-2018: green (small) and yellow-green (large) plates are issued only to new-energy vehicles;
# blue and yellow only to the rest. White (police) and black (foreign) say nothing about the fuel.
_NEV_COLORS = {"green": True, "yellow-green": True, "blue": False, "yellow": False}


@dataclass(frozen=True)
class Facts:
    """What the engine knows at one passage; unknowns are kept as sets of possibilities."""

    policy: Policy
    day: date
    gate: Gate
    enterprise: Enterprise | None
    alert_level: str | None
    registered: bool
    plate: Any  # plate_reader.plates.Plate | None
    plate_color: str | None
    plate_new_energy: bool | None
    fuels: frozenset[str]
    classes: frozenset[str]
    stage: int | None
    blacklisted: bool
    evidence: frozenset[str]


def _parse_plate(text: str | None) -> tuple[Any, bool]:
    """(Plate or None, unreadable). The plate grammar lives in plate_reader; we only consult it."""
    if not text:
        return None, False
    try:
        from plate_reader import plates
    except ImportError:  # grammar not installed: judge by colour alone rather than fail the gate
        return None, False
    invalid = getattr(plates, "InvalidPlate", ValueError)
    try:
        return plates.parse(text), False
    except (invalid, TypeError):
        return None, True


def _fuels_from_plate(plate_nev: bool | None, pure_electric: bool | None, policy: Policy) -> frozenset[str]:
    if plate_nev is None:
        return _ALL_FUELS
    if plate_nev:
        if pure_electric is True:
            return frozenset({"electric"})
        if pure_electric is False:
            # GA 36-2018's "not pure electric" letters cover plug-in hybrids and fuel-cell vehicles.
            return frozenset({"phev", "hydrogen"})
        return frozenset(policy.new_energy_fuels) or _ALL_FUELS
    return _ALL_FUELS - policy.new_energy_fuels


def gather_facts(
    vehicle: Vehicle | None,
    gate: Gate,
    enterprise: Enterprise | None,
    blacklist_entry: BlacklistEntry | None,
    alert_level: str | None,
    moment: datetime,
    policy: Policy,
    observed_plate_color: str | None = None,
) -> Facts:
    if alert_level == "none":  # the ledger's spelling of "no alert"
        alert_level = None
    if alert_level is not None and alert_level not in ALERT_LEVELS:
        raise ValueError(f"alert_level must be None or one of {ALERT_LEVELS}, not {alert_level!r}")
    day = policy.local_day(moment)
    registered = vehicle is not None and vehicle.registered
    plate_text = vehicle.plate if vehicle is not None else None
    plate, unreadable = _parse_plate(plate_text)
    registry_color = vehicle.plate_color if vehicle is not None else None
    # The colour the camera saw beats the registry's: it is evidence about this passage.
    color = observed_plate_color if observed_plate_color not in (None, "unknown") else registry_color
    if color == "unknown":
        color = None
    color_nev = _NEV_COLORS.get(color) if color else None
    plate_nev = bool(plate.new_energy) if plate is not None else color_nev
    pure_electric = getattr(plate, "pure_electric", None) if plate is not None else None

    fuel = vehicle.fuel_type if registered and vehicle is not None else None
    fuels = frozenset({fuel}) if fuel else _fuels_from_plate(plate_nev, pure_electric, policy)
    if registered and vehicle is not None:
        # A registered vehicle without a class is still a vehicle someone vouched for; "other" lets
        # hauling rules (vehicle_classes_not = cars/buses) reach it while class-specific ones do not.
        classes = frozenset({vehicle.vehicle_class or "other"})
        stage = vehicle.emission_stage
    else:
        classes = _ALL_CLASSES
        stage = None

    evidence: set[str] = set()
    if unreadable:
        evidence.add("unreadable")
    if fuel is not None:
        fuel_nev = fuel in policy.new_energy_fuels
        seen = [e for e in (plate.new_energy if plate is not None else None, color_nev) if e is not None]
        if any(bool(e) != fuel_nev for e in seen):
            evidence.add("fuel_mismatch")
        if pure_electric is True and fuel != "electric" or pure_electric is False and fuel == "electric":
            evidence.add("fuel_mismatch")
    expected = tuple(getattr(plate, "expected_colors", ()) or ()) if plate is not None else ()
    if color and expected and color not in expected:
        evidence.add("color_mismatch")
    if (
        observed_plate_color not in (None, "unknown")
        and registry_color not in (None, "unknown")
        and observed_plate_color != registry_color
    ):
        evidence.add("color_mismatch")

    blacklisted = blacklist_entry is not None and blacklist_entry.in_force_on(day)
    return Facts(
        policy=policy, day=day, gate=gate, enterprise=enterprise, alert_level=alert_level,
        registered=registered, plate=plate, plate_color=color, plate_new_energy=plate_nev,
        fuels=fuels, classes=classes, stage=stage, blacklisted=blacklisted, evidence=frozenset(evidence),
    )


def decide(
    vehicle: Vehicle | None,
    gate: Gate,
    enterprise: Enterprise | None,
    blacklist_entry: BlacklistEntry | None,
    alert_level: str | None,
    moment: datetime,
    policy: Policy,
    *,
    observed_plate_color: str | None = None,
) -> Decision:
    """Judge one passage under ``policy``; every rule that applies is a reason, in file order.

    ``vehicle=None`` or ``registered=False`` is an unregistered vehicle; pass ``Vehicle(plate, colour,
    registered=False)`` when the plate was read, so the plate's own evidence can be used; for an
    unregistered vehicle only its plate and colour are used (any fuel/class/stage given is ignored).
    ``enterprise`` is the gate's enterprise (None at a city checkpoint). ``blacklist_entry`` is the
    unrevoked entry for this plate, if any; its ``valid_until`` is checked here against the local day.
    ``alert_level`` is the heavy-pollution alert in force at ``moment`` (None = no alert).
    ``moment`` must be timezone-aware; rule periods are local days in the policy's time zone.
    The policy is applied as given, even outside its effective dates (that is what replay wants);
    choose it with ``PolicySet.policy_for(moment)`` for live decisions.
    ``observed_plate_color`` is the colour the camera/guard saw, compared with the registry's.
    """
    facts = gather_facts(vehicle, gate, enterprise, blacklist_entry, alert_level, moment, policy,
                         observed_plate_color)
    reasons = tuple(
        rule.reason()
        for rule in policy.rules
        if all(c.test(facts, c.value) for c in rule.scope) and all(c.test(facts, c.value) for c in rule.match)
    )
    verdict = "deny" if any(r.effect == "deny" for r in reasons) else "allow"
    return Decision(decision=verdict, reasons=reasons, policy_id=policy.id, policy_document=policy.document)
