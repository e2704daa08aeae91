"""Clean-transport figures, targets and the projection: pure functions over counts the store hands in.

No database, no clock: ``now`` is a parameter, so a report can be reproduced from its inputs.

Readings of issue 7 made here (each is stated in the API answer too, where a user can see it):
- Non-road tonnes are reported per calendar month. A month only partly inside the report period counts pro rata
  by days (a one-week report does not get a whole month of rail), rounded to 0.1 t.
- ``met`` and the projection judge the tonnage ratio; where no tonnage at all was recorded (no cargo tonnes on any
  allowed passage and no non-road tonnes) they judge the trip ratio instead. ``basis`` names which.
- The projection assumes the period keeps its current pace (figures so far / time elapsed) and that clean trips
  still needed *replace* fuel trips among those expected, rather than being added on top.
"""

from __future__ import annotations

import calendar
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from gate_service.policy.model import SHANGHAI, period_bounds

ZERO = Decimal(0)
ONE = Decimal(1)
TENTH = Decimal("0.1")
NON_ROAD_MODES = ("rail", "waterway", "pipeline", "conveyor")
RATIO_DIGITS = 4

TargetLookup = Callable[[str, "str | None", date, date], "float | None"]


def tonnes(value: Decimal | float | int) -> Decimal:
    return Decimal(str(value)).quantize(TENTH, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class RoadCounts:
    """Sums of the daily roll-up over some days."""

    trips: int = 0
    clean_trips: int = 0
    tonnes: Decimal = ZERO
    clean_tonnes: Decimal = ZERO

    def __add__(self, other: RoadCounts) -> RoadCounts:
        return RoadCounts(self.trips + other.trips, self.clean_trips + other.clean_trips,
                          self.tonnes + other.tonnes, self.clean_tonnes + other.clean_tonnes)


@dataclass(frozen=True)
class Volumes:
    """One month's non-road tonnes as the enterprise reported them."""

    rail: Decimal = ZERO
    waterway: Decimal = ZERO
    pipeline: Decimal = ZERO
    conveyor: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.rail + self.waterway + self.pipeline + self.conveyor

    def scaled(self, share: Decimal) -> Volumes:
        return Volumes(*(tonnes(v * share) for v in (self.rail, self.waterway, self.pipeline, self.conveyor)))

    def __add__(self, other: Volumes) -> Volumes:
        return Volumes(self.rail + other.rail, self.waterway + other.waterway,
                       self.pipeline + other.pipeline, self.conveyor + other.conveyor)


NO_ROAD, NO_VOLUMES = RoadCounts(), Volumes()


@dataclass(frozen=True)
class Figures:
    """Everything a report line says about one stretch of days."""

    first: date
    last: date
    road: RoadCounts = field(default_factory=RoadCounts)
    non_road: Volumes = field(default_factory=Volumes)
    target: float | None = None

    @property
    def trips(self) -> int:
        return self.road.trips

    @property
    def clean_trips(self) -> int:
        return self.road.clean_trips

    @property
    def tonnes(self) -> Decimal:
        return self.road.tonnes + self.non_road.total

    @property
    def clean_tonnes(self) -> Decimal:
        # Every non-road mode is clean (rail, waterway, pipeline, tubular belt conveyor).
        return self.road.clean_tonnes + self.non_road.total

    @property
    def basis(self) -> str:
        return "tonnes" if self.tonnes > 0 else "trips"

    @property
    def met(self) -> bool | None:
        return _met(self.target, self.tonnes, self.clean_tonnes, self.trips, self.clean_trips)

    def to_json(self) -> dict[str, Any]:
        return figures_json(_iso(self.first), _iso(self.last), self.road, self.non_road, self.target)


def figures_json(first: str, last: str, road: RoadCounts, non_road: Volumes, target: float | None
                 ) -> dict[str, Any]:
    """A report line's JSON: a function over plain values, not the properties, because a city-wide report with
    months builds ~12,000 of these and this is most of its time."""
    trips, clean_trips = road.trips, road.clean_trips
    road_f, clean_road_f = float(road.tonnes), float(road.clean_tonnes)
    non_road_total = ZERO if non_road is NO_VOLUMES else non_road.total
    if non_road_total:
        total, clean = road.tonnes + non_road_total, road.clean_tonnes + non_road_total
        total_f, clean_f = float(total), float(clean)
        rail, waterway, pipeline, conveyor = (float(non_road.rail), float(non_road.waterway),
                                              float(non_road.pipeline), float(non_road.conveyor))
        non_road_f = float(non_road_total)
    else:  # most months of most enterprises: no rail, no conveyor
        total, clean, total_f, clean_f = road.tonnes, road.clean_tonnes, road_f, clean_road_f
        rail = waterway = pipeline = conveyor = non_road_f = 0.0
    ratio_trips = round(clean_trips / trips, RATIO_DIGITS) if trips else None
    ratio_tonnes = round(clean_f / total_f, RATIO_DIGITS) if total_f else None
    basis = "tonnes" if total_f > 0 else "trips"
    return {
        "from": first,
        "to": last,
        "trips": trips,
        "clean_trips": clean_trips,
        "ratio_trips": ratio_trips,
        "tonnes": total_f,
        "clean_tonnes": clean_f,
        "ratio_tonnes": ratio_tonnes,
        "road_tonnes": road_f,
        "clean_road_tonnes": clean_road_f,
        "non_road_tonnes": non_road_f,
        "rail_tonnes": rail,
        "waterway_tonnes": waterway,
        "pipeline_tonnes": pipeline,
        "conveyor_tonnes": conveyor,
        "basis": basis,
        "ratio": ratio_tonnes if basis == "tonnes" else ratio_trips,
        "target": target,
        # Which plan set it (a policy id; "base": a standing target, see base.toml), so a reader can check it.
        "target_plan": getattr(target, "plan", None),
        "met": _met(target, total, clean, trips, clean_trips),
    }


def _met(target: float | None, total: Decimal, clean: Decimal, trips: int, clean_trips: int) -> bool | None:
    """Tonnage ratio against the target; the trip ratio where no tonnage was recorded at all."""
    if target is None:
        return None
    if total <= 0:
        if trips == 0:
            return None
        total, clean = Decimal(trips), Decimal(clean_trips)
    # Exact comparison: 0.6 of 10 trips is met by 6, whatever float rounding says.
    return clean >= _exact(target) * total


@functools.lru_cache(maxsize=256)
def _exact(target: float) -> Decimal:
    return Decimal(str(target))


def ratio(part: Decimal | int, whole: Decimal | int) -> float | None:
    if not whole:
        return None
    # A float quotient rounded to 4 digits: what is shown. (Whether a target is met is decided on exact
    # decimals in _met, never on this.) Decimal division here was a fifth of a city-wide report's time.
    return round(float(part) / float(whole), RATIO_DIGITS)


@functools.lru_cache(maxsize=4096)
def _iso(day: date) -> str:
    return day.isoformat()


def month_start(day: date) -> date:
    return day.replace(day=1)


def months_between(first: date, last: date) -> list[date]:
    """First days of the calendar months that the local days first..last touch."""
    out, m = [], month_start(first)
    while m <= last:
        out.append(m)
        m = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
    return out


def month_end(m: date) -> date:
    return m.replace(day=calendar.monthrange(m.year, m.month)[1])


@functools.lru_cache(maxsize=64)
def month_spans(first: date, last: date) -> tuple[tuple[date, date, date, Decimal], ...]:
    """(month, first day, last day, share of the month's days) for each month the period touches. The same
    for every enterprise of a report: worked out once, not 500 times."""
    return tuple((m, *month_share(m, first, last)) for m in months_between(first, last))


@functools.lru_cache(maxsize=64)
def _month_labels(first: date, last: date) -> tuple[tuple[date, date, date, Decimal, str, str, str], ...]:
    return tuple((m, lo, hi, share, lo.isoformat(), hi.isoformat(), f"{m.year:04d}-{m.month:02d}")
                 for m, lo, hi, share in month_spans(first, last))


def month_share(m: date, first: date, last: date) -> tuple[date, date, Decimal]:
    """The part of month ``m`` inside first..last, and its share of the month's days."""
    end = month_end(m)
    lo, hi = max(m, first), min(end, last)
    if lo == m and hi == end:
        return lo, hi, ONE
    return lo, hi, Decimal((hi - lo).days + 1) / Decimal(end.day)


def enterprise_figures(
    enterprise: Mapping[str, Any],
    first: date,
    last: date,
    road_by_month: Mapping[date, RoadCounts],
    volumes_by_month: Mapping[date, Volumes],
    target_for: TargetLookup,
) -> tuple[Figures, list[Figures]]:
    """The whole period and each month of it for one enterprise (months clipped to the period)."""
    industry, county = enterprise.get("industry") or "", enterprise.get("county")
    months = []
    for m, lo, hi, share in month_spans(first, last):
        vol = volumes_by_month.get(m, NO_VOLUMES)
        if vol is not NO_VOLUMES and share != ONE:
            vol = vol.scaled(share)
        months.append(Figures(lo, hi, road_by_month.get(m, NO_ROAD), vol, target_for(industry, county, lo, hi)))
    road = sum_road({m.first: m.road for m in months})
    return enterprise_total(enterprise, first, last, road, volumes_by_month, target_for), months


def enterprise_total(
    enterprise: Mapping[str, Any],
    first: date,
    last: date,
    road: RoadCounts,
    volumes_by_month: Mapping[date, Volumes],
    target_for: TargetLookup,
) -> Figures:
    """The whole period only, from its road totals: the same figures as ``enterprise_figures(...)[0]`` without
    building (and asking targets for) every month — the city-wide table needs 500 of these, not 12,000."""
    non_road = NO_VOLUMES
    for m, _lo, _hi, share in month_spans(first, last):
        vol = volumes_by_month.get(m)
        if vol is not None:
            non_road = non_road + (vol if share == ONE else vol.scaled(share))
    return Figures(first, last, road, non_road,
                   target_for(enterprise.get("industry") or "", enterprise.get("county"), first, last))


def sum_road(road_by_month: Mapping[date, RoadCounts]) -> RoadCounts:
    trips = clean_trips = 0
    road_tonnes = clean_road_tonnes = ZERO
    for r in road_by_month.values():
        trips += r.trips
        clean_trips += r.clean_trips
        road_tonnes += r.tonnes
        clean_road_tonnes += r.clean_tonnes
    return RoadCounts(trips, clean_trips, road_tonnes, clean_road_tonnes)


def projection(total: Figures, now: datetime) -> dict[str, Any]:
    """Where the period ends at the current pace, and the clean trips still needed to reach the target."""
    start, end = period_bounds(total.first, total.last)
    days_total = (total.last - total.first).days + 1
    if now <= start:
        status, elapsed = "not_started", 0.0
    elif now >= end:
        status, elapsed = "finished", float(days_total)
    else:
        status, elapsed = "running", (now - start).total_seconds() / 86400
    out: dict[str, Any] = {
        "as_of": now.astimezone(SHANGHAI).isoformat(timespec="seconds"),
        "status": status,
        "days_total": days_total,
        "days_elapsed": round(elapsed, 2),
        "days_remaining": round(days_total - elapsed, 2),
        "trips": None, "clean_trips": None, "tonnes": None, "clean_tonnes": None,
        "ratio_trips": None, "ratio_tonnes": None, "basis": total.basis, "ratio": None, "target": total.target,
        "met": None, "clean_trips_needed": None, "clean_tonnes_needed": None,
        "clean_trips_needed_per_day": None, "remaining_trips_expected": None,
        "clean_share_of_remaining_needed": None, "reachable": None,
    }
    if elapsed <= 0:
        return out  # no pace yet
    scale = Decimal(days_total) / Decimal(repr(elapsed))
    proj_trips = Decimal(total.trips) * scale
    proj_clean = Decimal(total.clean_trips) * scale
    proj_tonnes = total.tonnes * scale
    proj_clean_tonnes = total.clean_tonnes * scale
    out.update({
        "trips": round(float(proj_trips), 1),
        "clean_trips": round(float(proj_clean), 1),
        "tonnes": float(tonnes(proj_tonnes)),
        "clean_tonnes": float(tonnes(proj_clean_tonnes)),
        "ratio_trips": ratio(total.clean_trips, total.trips),  # a pace keeps the ratio; shown for charts
        "ratio_tonnes": ratio(total.clean_tonnes, total.tonnes),
    })
    out["ratio"] = out["ratio_tonnes"] if total.basis == "tonnes" else out["ratio_trips"]
    out["met"] = total.met
    if total.target is None:
        return out
    target = Decimal(str(total.target))
    remaining_trips = max(ZERO, proj_trips - total.trips)
    if total.basis == "trips":
        required = math.ceil(target * proj_trips - Decimal("1e-9"))
        needed: int | None = max(0, required - total.clean_trips)
    else:
        tonnes_needed = max(ZERO, target * proj_tonnes - total.clean_tonnes)
        out["clean_tonnes_needed"] = float(tonnes(tonnes_needed))
        # Rail, waterway, pipeline and conveyor keep their pace too and are all clean; road covers the rest.
        road_needed = max(ZERO, tonnes_needed - total.non_road.total * (scale - 1))
        # Tonnes a trip moves on average (goods in and out per entry): converts tonnes into trips.
        per_trip = total.road.tonnes / total.trips if total.trips else ZERO
        needed = math.ceil(road_needed / per_trip - Decimal("1e-9")) if per_trip > 0 else None
        if needed is not None:
            needed = max(0, needed)
    out["clean_trips_needed"] = needed
    out["remaining_trips_expected"] = round(float(remaining_trips), 1)
    days_left = Decimal(days_total) - Decimal(repr(elapsed))
    if needed is not None:
        out["clean_trips_needed_per_day"] = round(float(needed / days_left), 1) if days_left > 0 else None
        if remaining_trips > 0:
            out["clean_share_of_remaining_needed"] = round(float(needed / remaining_trips), RATIO_DIGITS)
        out["reachable"] = needed == 0 or (status == "running" and needed <= remaining_trips)
    return out


def enterprise_report(
    enterprise: Mapping[str, Any],
    first: date,
    last: date,
    road: Mapping[date, RoadCounts] | RoadCounts,
    volumes_by_month: Mapping[date, Volumes],
    target_for: TargetLookup,
    now: datetime,
    *,
    with_months: bool = True,
) -> dict[str, Any]:
    """The API answer for one enterprise (see API.md "Clean-transport reports"). ``road`` is the counts by month,
    or the period's total (then ``months`` is empty). ``with_months=False`` leaves ``months`` empty too: the
    city-wide table does not show them, and they are most of the work."""
    month_rows = []
    if isinstance(road, RoadCounts) or not with_months:
        total_road = road if isinstance(road, RoadCounts) else sum_road(road)
    else:
        # enterprise_figures' months, written straight to JSON (no Figures objects): the same values.
        industry, county = enterprise.get("industry") or "", enterprise.get("county")
        for m, lo, hi, share, lo_iso, hi_iso, label in _month_labels(first, last):
            vol = volumes_by_month.get(m, NO_VOLUMES)
            if vol is not NO_VOLUMES and share != ONE:
                vol = vol.scaled(share)
            row = figures_json(lo_iso, hi_iso, road.get(m, NO_ROAD), vol, target_for(industry, county, lo, hi))
            row["month"] = label
            month_rows.append(row)
        total_road = sum_road(road)
    total = enterprise_total(enterprise, first, last, total_road, volumes_by_month, target_for)
    body = total.to_json()
    return {
        "enterprise_id": enterprise["id"],
        "enterprise_name": enterprise.get("name"),
        "industry": enterprise.get("industry"),
        "county": enterprise.get("county"),
        "zone_id": enterprise.get("zone_id"),
        **body,
        "months": month_rows,
        "projection": projection(total, now),
    }


def city_totals(rows: Iterable[Mapping[str, Any]], first: date, last: date) -> dict[str, Any]:
    """Sums over the listed enterprises (the city-wide line of the bureau's table); no target applies."""
    road, non_road = RoadCounts(), Volumes()
    n = 0
    for r in rows:
        n += 1
        road += RoadCounts(r["trips"], r["clean_trips"], tonnes(r["road_tonnes"]), tonnes(r["clean_road_tonnes"]))
        non_road += Volumes(*(tonnes(r[f"{mode}_tonnes"]) for mode in NON_ROAD_MODES))
    body = Figures(first, last, road, non_road, None).to_json()
    body["enterprises"] = n
    return body


SORT_KEYS = ("ratio", "ratio_tonnes", "ratio_trips", "trips", "tonnes", "enterprise_id")


def sort_rows(rows: list[dict[str, Any]], key: str, descending: bool) -> list[dict[str, Any]]:
    """Sort by a figure; rows without one (no trips, no tonnage) always come last."""
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    # Two stable sorts: ties stay in enterprise order whichever way the figure runs.
    present.sort(key=lambda r: r["enterprise_id"])
    present.sort(key=lambda r: r[key], reverse=descending)
    missing.sort(key=lambda r: r["enterprise_id"])
    return present + missing
