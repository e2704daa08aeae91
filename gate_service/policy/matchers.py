"""The generic conditions a rule may use, and how each is read from the file and tested.

A rule fires only when every condition is *certainly* true. Facts the engine does not know (an unknown
emission stage, the class of an unregistered vehicle) are sets of possibilities, and a condition over them
holds only if it holds for every possibility: a guard is never told to turn a truck away on a guess.
Where a plan wants unknowns handled, it says so with its own rule (e.g. ``emission_stage_known = false``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from .model import ALERT_LEVELS, FUEL_TYPES, GRADES, LINFEN_COUNTIES, PLATE_COLORS, VEHICLE_CLASSES

if TYPE_CHECKING:
    from .decide import Facts


class BadValue(ValueError):
    """A condition's value in the file is not usable; the message is shown to the file's author."""


@dataclass(frozen=True)
class ParseContext:
    zones: frozenset[str]
    periods: frozenset[str]
    settings: dict[str, Any]
    industries: frozenset[str]  # known industries (unknown ones only warn)
    warnings: list[str]


@dataclass(frozen=True)
class Matcher:
    section: str  # "scope" or "match"
    parse: Callable[[Any, ParseContext], Any]
    test: Callable[[Facts, Any], bool]
    doc: str


# --- value readers -----------------------------------------------------------------------------


def _str_list(value: Any, allowed: tuple[str, ...] | frozenset[str] | None, what: str) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise BadValue(f"expected a non-empty list of {what} names")
    if allowed is not None:
        unknown = [v for v in value if v not in allowed]
        if unknown:
            raise BadValue(f"unknown {what} {', '.join(map(repr, unknown))} (known: {', '.join(sorted(allowed))})")
    return frozenset(value)


def _bool(value: Any, _ctx: ParseContext) -> bool:
    if not isinstance(value, bool):
        raise BadValue("expected true or false")
    return value


def _stage(value: Any, _ctx: ParseContext) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6:
        raise BadValue("expected an emission stage 0–6 (国0–国6)")
    return value


def _date(value: Any, _ctx: ParseContext) -> date:
    # TOML local dates arrive as datetime.date; a quoted string is a common slip worth a clear message.
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    raise BadValue("expected a TOML date such as 2024-09-30 (unquoted)")


def _fuels(value: Any, _ctx: ParseContext) -> frozenset[str]:
    return _str_list(value, FUEL_TYPES, "fuel type")


def _classes(value: Any, _ctx: ParseContext) -> frozenset[str]:
    return _str_list(value, VEHICLE_CLASSES, "vehicle class")


def _zones(value: Any, ctx: ParseContext) -> frozenset[str]:
    return _str_list(value, ctx.zones, "zone")


def _industries(value: Any, ctx: ParseContext) -> frozenset[str]:
    got = _str_list(value, None, "industry")
    for v in sorted(got - ctx.industries):
        ctx.warnings.append(f"industry {v!r} is not one the registry knows yet")
    return got


def _counties(value: Any, ctx: ParseContext) -> frozenset[str]:
    got = _str_list(value, None, "county")
    for v in sorted(got - set(LINFEN_COUNTIES)):
        ctx.warnings.append(f"county {v!r} is not a county of Linfen")
    return got


def _grades(value: Any, _ctx: ParseContext) -> frozenset[str]:
    return _str_list(value, GRADES, "grade")


def _alerts(value: Any, _ctx: ParseContext) -> frozenset[str]:
    return _str_list(value, ("none",) + ALERT_LEVELS, "alert level")


def _periods(value: Any, ctx: ParseContext) -> frozenset[str]:
    return _str_list(value, ctx.periods, "period")


def _gate_kind(value: Any, _ctx: ParseContext) -> str:
    if value not in ("enterprise", "checkpoint", "any"):
        raise BadValue("expected 'enterprise', 'checkpoint' or 'any'")
    return value


def _setting(value: Any, ctx: ParseContext) -> str:
    if not isinstance(value, str) or value not in ctx.settings:
        raise BadValue(f"expected the name of a setting in [settings] (have: {', '.join(sorted(ctx.settings))})")
    if not isinstance(ctx.settings[value], bool):
        raise BadValue(f"setting {value!r} is not true/false")
    return value


def _colors(value: Any, _ctx: ParseContext) -> frozenset[str]:
    return _str_list(value, PLATE_COLORS, "plate colour")


EVIDENCE = ("fuel_mismatch", "color_mismatch", "unreadable")


def _evidence(value: Any, _ctx: ParseContext) -> frozenset[str]:
    return _str_list(value, EVIDENCE, "plate evidence")


# --- tests over facts ----------------------------------------------------------------------------


def _all_in(possible: frozenset[str], allowed: frozenset[str]) -> bool:
    return bool(possible) and possible <= allowed


def _none_in(possible: frozenset[str], banned: frozenset[str]) -> bool:
    return bool(possible) and not (possible & banned)


def _ent(f: Facts) -> Any:
    return f.enterprise


MATCHERS: dict[str, Matcher] = {
    # scope: where, when and for whom the rule is in force
    "gate": Matcher("scope", _gate_kind, lambda f, v: v == "any" or (v == "checkpoint") == f.gate.is_checkpoint,
                    "enterprise | checkpoint | any"),
    "gate_zones": Matcher("scope", _zones, lambda f, v: f.gate.zone_id in v, "zone of the gate"),
    "gate_zones_not": Matcher("scope", _zones, lambda f, v: f.gate.zone_id not in v, "gate not in these zones"),
    "enterprise_zones": Matcher("scope", _zones, lambda f, v: _ent(f) is not None and _ent(f).zone_id in v,
                                "zone of the gate's enterprise"),
    "industries": Matcher("scope", _industries, lambda f, v: _ent(f) is not None and _ent(f).industry in v,
                          "industry of the gate's enterprise"),
    "counties": Matcher("scope", _counties, lambda f, v: _ent(f) is not None and _ent(f).county in v,
                        "county of the gate's enterprise (Chinese name)"),
    "grades": Matcher("scope", _grades, lambda f, v: _ent(f) is not None and _ent(f).grade in v,
                      "performance grade of the gate's enterprise"),
    "retrofit_not_completed_by": Matcher(
        "scope", _date,
        lambda f, v: _ent(f) is not None
        and (_ent(f).retrofit_completed_on is None or _ent(f).retrofit_completed_on > v),
        "enterprise had not completed its clean-transport retrofit on this day"),
    "retrofit_completed_by": Matcher(
        "scope", _date,
        lambda f, v: _ent(f) is not None
        and _ent(f).retrofit_completed_on is not None and _ent(f).retrofit_completed_on <= v,
        "enterprise had completed its clean-transport retrofit by this day"),
    "periods": Matcher("scope", _periods, lambda f, v: any(f.policy.in_period(p, f.day) for p in v),
                       "named periods of the file (local days)"),
    "alert_levels": Matcher("scope", _alerts, lambda f, v: (f.alert_level or "none") in v,
                            "alert levels in force (none, yellow, orange, red)"),
    "setting": Matcher("scope", _setting, lambda f, v: bool(f.policy.settings.get(v)),
                       "a true/false setting that switches the rule on"),
    # match: which vehicles the rule catches
    "fuel_types": Matcher("match", _fuels, lambda f, v: _all_in(f.fuels, v), "fuel is one of"),
    "fuel_types_not": Matcher("match", _fuels, lambda f, v: _none_in(f.fuels, v), "fuel is none of"),
    "new_energy": Matcher("match", _bool,
                          lambda f, v: _all_in(f.fuels, f.policy.new_energy_fuels) if v
                          else _none_in(f.fuels, f.policy.new_energy_fuels),
                          "fuel is (true) / is not (false) new energy as [fuels] defines it"),
    "clean": Matcher("match", _bool,
                     lambda f, v: _all_in(f.fuels, f.policy.clean_fuels) if v
                     else _none_in(f.fuels, f.policy.clean_fuels),
                     "fuel counts (true) / does not count (false) as clean transport"),
    "vehicle_classes": Matcher("match", _classes, lambda f, v: _all_in(f.classes, v), "class is one of"),
    "vehicle_classes_not": Matcher("match", _classes, lambda f, v: _none_in(f.classes, v), "class is none of"),
    "max_emission_stage": Matcher("match", _stage, lambda f, v: f.stage is not None and f.stage <= v,
                                  "emission stage is at most (国N)"),
    "min_emission_stage": Matcher("match", _stage, lambda f, v: f.stage is not None and f.stage >= v,
                                  "emission stage is at least (国N)"),
    "emission_stage_known": Matcher("match", _bool, lambda f, v: (f.stage is not None) == v,
                                    "the registry has an emission stage"),
    "registered": Matcher("match", _bool, lambda f, v: f.registered == v, "vehicle is in the registry"),
    "blacklisted": Matcher("match", _bool, lambda f, v: f.blacklisted == v,
                           "vehicle has a blacklist entry in force that day"),
    "plate_new_energy": Matcher("match", _bool,
                                lambda f, v: f.plate_new_energy is not None and f.plate_new_energy == v,
                                "the plate itself (letters, else colour) shows a new-energy vehicle"),
    "plate_colors": Matcher("match", _colors, lambda f, v: f.plate_color in v, "plate colour seen"),
    "plate_evidence": Matcher("match", _evidence, lambda f, v: bool(v & f.evidence),
                              "plate evidence disagrees: fuel_mismatch | color_mismatch | unreadable"),
}
