"""Pure figures: proration, met on exact decimals, the projection, sorting."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from gate_service.policy.model import SHANGHAI
from gate_service.reports.compute import (
    Figures,
    RoadCounts,
    Volumes,
    enterprise_figures,
    months_between,
    projection,
    sort_rows,
)

COAL = {"id": "c", "industry": "coal", "county": "霍州市"}


def fixed(target: float | None):  # type: ignore[no-untyped-def]
    return lambda industry, county, first, last: target


def test_months_between_and_proration():
    assert months_between(date(2024, 11, 16), date(2025, 2, 1)) == [
        date(2024, 11, 1), date(2024, 12, 1), date(2025, 1, 1), date(2025, 2, 1)]
    vols = {date(2024, 11, 1): Volumes(rail=Decimal(100)), date(2025, 2, 1): Volumes(conveyor=Decimal(28))}
    total, months = enterprise_figures(COAL, date(2024, 11, 16), date(2025, 2, 1), {}, vols, fixed(None))
    # 15/30 of November's rail, 1/28 of February's conveyor.
    assert [m.non_road.total for m in months] == [Decimal("50.0"), 0, 0, Decimal("1.0")]
    assert total.non_road.total == Decimal("51.0")
    assert (months[0].first, months[0].last, months[-1].first, months[-1].last) == (
        date(2024, 11, 16), date(2024, 11, 30), date(2025, 2, 1), date(2025, 2, 1))


def test_met_is_exact_at_the_threshold():
    f = Figures(date(2025, 1, 1), date(2025, 1, 31),
                RoadCounts(10, 8, Decimal("0.3"), Decimal("0.24")), Volumes(), 0.8)
    assert f.basis == "tonnes" and f.met is True  # 0.24 / 0.3 is 0.8 exactly; floats would say 0.7999...
    g = Figures(date(2025, 1, 1), date(2025, 1, 31), RoadCounts(10, 7), Volumes(), 0.8)
    assert g.basis == "trips" and g.met is False
    assert Figures(date(2025, 1, 1), date(2025, 1, 31), RoadCounts(), Volumes(), 0.8).met is None


def test_projection_on_trips():
    # January, as of the end of the 10th: 20 trips of which 10 clean, no tonnage recorded.
    f = Figures(date(2025, 1, 1), date(2025, 1, 31), RoadCounts(20, 10), Volumes(), 0.8)
    p = projection(f, datetime(2025, 1, 11, tzinfo=SHANGHAI))
    assert (p["status"], p["days_elapsed"], p["days_remaining"]) == ("running", 10.0, 21.0)
    assert (p["trips"], p["clean_trips"], p["ratio_trips"], p["met"]) == (62.0, 31.0, 0.5, False)
    # 0.8 x 62 = 49.6 → 50 clean trips in all; 10 done, 40 to go among the ~42 expected: reachable, barely.
    assert p["clean_trips_needed"] == 40 and p["remaining_trips_expected"] == 42.0
    assert p["clean_trips_needed_per_day"] == 1.9 and p["clean_share_of_remaining_needed"] == 0.9524
    assert p["reachable"] is True


def test_projection_on_tonnes_converts_to_trips():
    # 10 days of 31: 10 trips moving 300 t by road (30 t a trip), 60 t of it clean, plus 100 t by rail.
    f = Figures(date(2025, 1, 1), date(2025, 1, 31),
                RoadCounts(10, 2, Decimal(300), Decimal(60)), Volumes(rail=Decimal(100)), 0.8)
    p = projection(f, datetime(2025, 1, 11, tzinfo=SHANGHAI))
    assert p["basis"] == "tonnes" and p["tonnes"] == 1240.0 and p["clean_tonnes"] == 496.0
    # 0.8 x 1240 = 992 t clean needed, 160 t done: 832 t more. Rail keeps its pace (210 t more), so road must
    # carry 622 t clean: at 30 t a trip, 20.7 → 21 clean trips of the 21 expected.
    assert p["clean_tonnes_needed"] == 832.0 and p["clean_trips_needed"] == 21
    assert p["remaining_trips_expected"] == 21.0 and p["reachable"] is True
    assert p["clean_share_of_remaining_needed"] == 1.0


def test_projection_before_start_and_without_target():
    f = Figures(date(2025, 1, 1), date(2025, 1, 31), RoadCounts(), Volumes(), 0.8)
    p = projection(f, datetime(2024, 12, 1, tzinfo=SHANGHAI))
    assert p["status"] == "not_started" and p["trips"] is None and p["clean_trips_needed"] is None
    g = Figures(date(2025, 1, 1), date(2025, 1, 31), RoadCounts(5, 1), Volumes(), None)
    q = projection(g, datetime(2025, 1, 1, tzinfo=SHANGHAI) + timedelta(days=31, hours=5))
    assert q["status"] == "finished" and q["trips"] == 5.0 and q["clean_trips_needed"] is None


def test_sort_puts_missing_figures_last_either_way():
    rows = [{"enterprise_id": e, "ratio": r} for e, r in (("a", None), ("b", 0.5), ("c", 0.2), ("d", 0.5))]
    assert [r["enterprise_id"] for r in sort_rows(rows, "ratio", False)] == ["c", "b", "d", "a"]
    assert [r["enterprise_id"] for r in sort_rows(rows, "ratio", True)] == ["b", "d", "c", "a"]
