"""The alert-day comparison on the December month of conftest.py: every number against the hand count there."""

from __future__ import annotations

from datetime import date, datetime

from gate_service.inspection import days as d
from gate_service.inspection.compare import video_gaps
from gate_service.policy.model import SHANGHAI
from tests.inspection.conftest import D4

# The 10 ordinary working days before 12-18: 12-02 drops out, 12-11 (yellow alert) and 12-07 (Saturday) never
# count. Trips in there: 6,5,7,5,6,4,8,5,6,7 → sorted 4,5,5,5,6,6,6,7,7,8 → median 6.
BASELINE_DAYS = ["2024-12-03", "2024-12-04", "2024-12-05", "2024-12-06", "2024-12-09", "2024-12-10", "2024-12-12",
                 "2024-12-13", "2024-12-16", "2024-12-17"]


async def _get(client, headers, query, status=200):
    resp = await client.get(f"/api/v1/inspection/comparison?{query}", headers=headers)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_comparison_of_the_orange_alert(client, month):
    c = await _get(client, month["admin"], f"enterprise_id=e-a&alert_id={month['alerts']['orange']}")
    assert c["alert"]["level"] == "orange" and c["alert_days"] == ["2024-12-18", "2024-12-19"]
    d18, d19 = c["days"]
    # 12-18: in = electric 07:00 + the override of the 国4 truck + 国5 11:00 = 3; out = electric 07:30; denied 1.
    assert (d18["day"], d18["trips_in"], d18["trips_out"], d18["denied"]) == ("2024-12-18", 3, 1, 1)
    assert d18["alert_levels"] == ["orange"] and d18["weekday"] == 3
    # Every truck in went out again on ordinary days, but the deleted 12-17 09:00 row: outs 6,5,7,5,6,4,8,5,6,6
    # → median 6 as well.
    assert (d18["baseline_in"], d18["baseline_out"]) == (6.0, 6.0)
    assert (d18["in_vs_baseline"], d18["out_vs_baseline"]) == (0.5, 0.1667)
    assert d18["baseline_days"] == BASELINE_DAYS
    assert (d19["trips_in"], d19["trips_out"], d19["denied"], d19["baseline_in"], d19["in_vs_baseline"]) == \
        (0, 0, 0, 6.0, 0.0)
    assert d19["baseline_days"] == BASELINE_DAYS  # 12-18 is an alert day and in the set: never a baseline day

    # Heavy 国4-and-below admitted during orange: only the overridden 国4 truck (the 国5 one is not listed, and
    # the denied row was not admitted).
    [heavy] = c["heavy_low_stage_admitted"]
    assert (heavy["passage_id"], heavy["plate"], heavy["emission_stage"], heavy["source"]) == \
        (month["override"], D4, 4, "override")
    assert datetime.fromisoformat(heavy["at"]) == datetime(2024, 12, 18, 9, 5, tzinfo=SHANGHAI)
    [ov] = c["overrides"]
    assert ov["passage_id"] == month["override"] and ov["overrides"] == month["denied"]
    assert ov["override_reason"] == "应急保供物资，值班领导批准"
    assert ov["overridden"]["decision"] == "deny" and ov["overridden"]["rules"] == ["alert-key-industry-guo4"]

    gates = {g["gate_id"]: g for g in c["gates"]}
    a1_18, a1_19 = gates["g-a1"]["days"]
    # g-a1 rows on the baseline days: 2 x (trips in - 1) = 10,8,12,8,10,6,14,8,10,12 → median 10.
    assert (a1_18["passages"], a1_18["baseline_passages"], a1_18["no_passages"]) == (5, 10.0, False)
    assert a1_18["video"] == {"covered_minutes": 1420.0, "gaps": [
        {"from": "2024-12-18T02:00:00+00:00", "to": "2024-12-18T02:20:00+00:00", "minutes": 20.0}]}
    assert a1_18["silent"] is True
    assert (a1_19["passages"], a1_19["no_passages"], a1_19["video"]) == (0, True, {"covered_minutes": 1440.0,
                                                                                   "gaps": []})
    a2_18, a2_19 = gates["g-a2"]["days"]
    assert gates["g-a2"]["records_video"] is False and a2_18["video"] is None
    assert (a2_18["passages"], a2_18["baseline_passages"], a2_18["silent"]) == (0, 2.0, True)
    assert a2_19["silent"] is True
    assert c["summary"] == {"days": 2, "trips_in": 3, "trips_out": 1, "heavy_low_stage_admitted": 1,
                            "overrides": 1, "silent_gate_days": 4}


async def test_comparison_by_days_and_by_period(client, month):
    a = month["admin"]
    by_alert = await _get(client, a, f"enterprise_id=e-a&alert_id={month['alerts']['orange']}")
    by_days = await _get(client, a, "enterprise_id=e-a&days=2024-12-19,2024-12-18")
    by_period = await _get(client, a, "enterprise_id=e-a&from=2024-12-01&to=2024-12-31")
    for other in (by_days, by_period):
        assert other["days"] == by_alert["days"] and other["summary"] == by_alert["summary"]
    # The yellow day on its own: compared like any other day; no orange/red, so no heavy-truck list.
    yellow = await _get(client, a, f"enterprise_id=e-a&alert_id={month['alerts']['yellow']}")
    [row] = yellow["days"]
    assert (row["day"], row["trips_in"], row["trips_out"], row["alert_levels"]) == ("2024-12-11", 9, 9, ["yellow"])
    # Baseline of 12-11: 12-02..12-10 are 7 ordinary days (4,6,5,7,5,6,4), plus the 3 last weekdays of November
    # (1 trip each) → 1,1,1,4,4,5,5,6,6,7 → median 4.5.
    assert row["baseline_in"] == 4.5 and row["in_vs_baseline"] == 2.0
    assert yellow["heavy_low_stage_admitted"] == [] and yellow["alert_days"] == []


async def test_comparison_errors_and_roles(client, month, token):
    a = month["admin"]
    err = await _get(client, a, "alert_id=1", 422)
    assert err["error"]["code"] == "enterprise_required"
    err = await _get(client, a, "enterprise_id=e-a&days=2024-13-01", 422)
    assert err["error"]["field"] == "days"
    err = await _get(client, a, "enterprise_id=e-a&alert_id=999", 404)
    assert err["error"]["code"] == "not_found"
    err = await _get(client, a, "enterprise_id=nope&days=2024-12-18", 404)
    # An enterprise sees only its own; ecology any; kiosk and police none.
    own = await token("enterprise", enterprise_id="e-a")
    assert (await _get(client, own, "days=2024-12-18"))["enterprise_id"] == "e-a"
    err = await _get(client, own, "enterprise_id=e-b&days=2024-12-18", 403)
    assert err["error"]["code"] == "forbidden_enterprise"
    eco = await token("ecology")
    assert (await _get(client, eco, "enterprise_id=e-b&days=2024-12-18"))["days"][0]["trips_in"] == 0
    for role in ("police",):
        err = await _get(client, await token(role), "enterprise_id=e-a&days=2024-12-18", 403)
        assert err["error"]["code"] == "forbidden_role"


def test_ordinary_days_and_baseline_rules():
    # Mon 2024-12-02 .. Sun 12-15; the 11th has an alert; the 4th had no passage.
    window = d.days_between(date(2024, 12, 2), date(2024, 12, 15))
    reporting = set(window) - {date(2024, 12, 4)}
    ordinary = d.ordinary_days(window, {date(2024, 12, 11)}, reporting)
    assert ordinary == [date(2024, 12, x) for x in (2, 3, 5, 6, 9, 10, 12, 13)]
    # Statutory holidays: 2025-01-01 and the Spring Festival week are not working days.
    assert not d.is_working_day(date(2025, 1, 1)) and not d.is_working_day(date(2025, 1, 30))
    assert d.is_working_day(date(2025, 1, 2))
    # Fewer than 5 baseline days: no baseline.
    assert d.baseline(date(2024, 12, 6), ordinary, {}) == (None, ordinary[:3])
    assert d.share(3, None) is None and d.share(3, 0) is None


def test_video_gaps_edges():
    t = lambda h, m=0: datetime(2024, 12, 18, h, m, tzinfo=SHANGHAI)  # noqa: E731
    segs = [{"started_at": t(0), "ended_at": t(1)}, {"started_at": t(1, 4), "ended_at": t(2)},
            {"started_at": t(1, 30), "ended_at": None}]
    # 4 minutes between 01:00 and 01:04 is below the 5-minute threshold; the open segment covers to the end.
    minutes, gaps = video_gaps(segs, t(0), t(3))
    assert minutes == 176.0 and gaps == []
    minutes, gaps = video_gaps([{"started_at": t(0, 30), "ended_at": t(1)}], t(0), t(2))
    assert minutes == 30.0 and [g["minutes"] for g in gaps] == [30.0, 60.0]


def test_local_days_at_the_ends_of_the_calendar():
    from datetime import timezone

    from gate_service.inspection.compare import local_days

    utc = timezone.utc
    # 16:00 UTC is midnight in Linfen: 12-18 00:00 .. 12-19 16:00 UTC touches local 12-18 and 12-19 only.
    assert local_days(datetime(2024, 12, 18, tzinfo=utc), datetime(2024, 12, 19, 16, tzinfo=utc)) == [
        date(2024, 12, 18), date(2024, 12, 19)]
    # A span from year 1 to 9999 (written by hand) is listed only inside the days asked about ...
    assert len(local_days(datetime(1, 1, 1, tzinfo=utc), datetime(9999, 12, 31, 23, tzinfo=utc),
                          date(2024, 1, 1), date(2024, 1, 31))) == 31
    # ... and the last hours of 9999-12-31 UTC, which have no local day, give none instead of an overflow.
    assert local_days(datetime(9999, 12, 31, 20, tzinfo=utc), datetime(9999, 12, 31, 23, tzinfo=utc)) == []
