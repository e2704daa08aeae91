"""Monthly roll-ups (migration 0011): kept by their own trigger, repaired from raw passages, and giving the same
report answers as the daily roll-ups and as raw passages, for whole and partial months alike."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from gate_service import keys
from gate_service.reports import service, store
from tests.reports.test_reports_api import DIESEL, ELECTRIC, _pass, ledger, registry  # noqa: F401

MONTHLY = "SELECT enterprise_id, month, trips, clean_trips, tonnes, clean_tonnes FROM {} ORDER BY 1, 2"
DAILY_BY_MONTH = """SELECT enterprise_id, month_of(day), sum(trips)::integer, sum(clean_trips)::integer, sum(tonnes),
                           sum(clean_tonnes) FROM transport_daily GROUP BY 1, 2 ORDER BY 1, 2"""


def test_split_period():
    # Whole months only.
    assert store.split_period(date(2024, 1, 1), date(2025, 12, 31)) == (
        date(2024, 1, 1), date(2025, 12, 1), None, None)
    # Partial at both ends, whole months between.
    assert store.split_period(date(2024, 11, 16), date(2025, 2, 1)) == (
        date(2024, 12, 1), date(2025, 1, 1), (date(2024, 11, 16), date(2024, 11, 30)),
        (date(2025, 2, 1), date(2025, 2, 1)))
    # Inside one month: no whole month (an empty range), one partial stretch.
    lo, hi, head, tail = store.split_period(date(2024, 11, 5), date(2024, 11, 20))
    assert lo > hi and head == (date(2024, 11, 5), date(2024, 11, 20)) and tail is None
    # A leap February, whole.
    assert store.split_period(date(2024, 2, 1), date(2024, 2, 29))[:2] == (date(2024, 2, 1), date(2024, 2, 1))


async def test_monthly_rollups_equal_daily_sums_and_raw(client, app, ledger):  # noqa: F811
    pool = app[keys.POOL]
    rolled = [tuple(r) for r in await pool.fetch(MONTHLY.format("transport_monthly"))]
    raw = [tuple(r) for r in await pool.fetch(MONTHLY.format("transport_monthly_raw('2024-01-01', '2025-12-01')"))]
    daily = [tuple(r) for r in await pool.fetch(DAILY_BY_MONTH)]
    assert rolled == raw == daily
    # Hand count (test_exact_figures_for_one_enterprise): e-steel Oct 1 trip 50 t, Nov 5 trips 2 clean 125 t
    # (70 clean), Dec 3 trips 1 clean 71.5 t (35 clean), Jan 1 trip 50 t clean.
    assert [(r[1], r[2], r[3], float(r[4]), float(r[5])) for r in rolled if r[0] == "e-steel"] == [
        (date(2024, 10, 1), 1, 1, 50.0, 50.0), (date(2024, 11, 1), 5, 2, 125.0, 70.0),
        (date(2024, 12, 1), 3, 1, 71.5, 35.0), (date(2025, 1, 1), 1, 1, 50.0, 50.0)]


@pytest.mark.parametrize("first,last", [
    (date(2024, 10, 1), date(2025, 1, 31)),    # whole months
    (date(2024, 11, 16), date(2024, 12, 10)),  # two partial months, none whole
    (date(2024, 10, 31), date(2025, 1, 1)),    # one day of each edge month, two whole months between
    (date(2024, 11, 30), date(2024, 11, 30)),  # a single day
    (date(2024, 11, 1), date(2024, 11, 29)),   # a month minus its last day
])
async def test_reports_agree_across_sources(client, app, ledger, first, last):  # noqa: F811
    pool = app[keys.POOL]
    target_for = app[keys.POLICIES].target_for
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    for with_months in (True, False):
        answers = [await service.reports(pool, target_for, first, last, now=now, source=source,
                                         with_months=with_months) for source in ("monthly", "daily", "raw")]
        assert answers[0] == answers[1] == answers[2]
        one = [await service.reports(pool, target_for, first, last, now=now, source=source, enterprise_id="e-steel",
                                     with_months=with_months) for source in ("monthly", "daily", "raw")]
        assert one[0] == one[1] == one[2]
    # The table's totals without months are those of the report with months.
    full = await service.reports(pool, target_for, first, last, now=now)
    table = await service.reports(pool, target_for, first, last, now=now, with_months=False)
    assert [{k: v for k, v in r.items() if k != "months"} for r in full] == \
        [{k: v for k, v in r.items() if k != "months"} for r in table]


async def test_trigger_keeps_monthly_rows_for_new_passages(client, app, ledger, registry):  # noqa: F811
    pool = app[keys.POOL]
    await _pass(client, registry, "g-s1", ELECTRIC, "2024-11-30T23:00:00+08:00", tonnes=7)
    await _pass(client, registry, "g-s1", DIESEL, "2024-12-31T23:59:59+08:00", "out", 3.5)
    row = await pool.fetchrow("SELECT trips, clean_trips, tonnes FROM transport_monthly "
                              "WHERE enterprise_id = 'e-steel' AND month = '2024-11-01'")
    assert (row["trips"], row["clean_trips"], float(row["tonnes"])) == (6, 3, 132.0)
    row = await pool.fetchrow("SELECT trips, tonnes FROM transport_monthly "
                              "WHERE enterprise_id = 'e-steel' AND month = '2024-12-01'")
    assert (row["trips"], float(row["tonnes"])) == (3, 75.0)


async def test_repair_rebuilds_monthly_rows_from_raw(client, app, ledger):  # noqa: F811
    pool = app[keys.POOL]
    good = [tuple(r) for r in await pool.fetch(MONTHLY.format("transport_monthly"))]
    await pool.execute("UPDATE transport_monthly SET trips = 999 WHERE month = '2024-11-01'")
    await pool.execute("DELETE FROM transport_monthly WHERE month = '2024-12-01'")
    written = await pool.fetchval("SELECT rebuild_transport_monthly('2024-11-01', '2024-12-01')")
    assert written == 2
    assert [tuple(r) for r in await pool.fetch(MONTHLY.format("transport_monthly"))] == good
    # The nightly repair (store.rebuild, a range of days) mends the months those days touch.
    await pool.execute("DELETE FROM transport_monthly")
    await store.rebuild(pool, date(2024, 11, 25), date(2024, 12, 3))
    assert [tuple(r) for r in await pool.fetch(MONTHLY.format("transport_monthly"))] == \
        [g for g in good if g[1] in (date(2024, 11, 1), date(2024, 12, 1))]
