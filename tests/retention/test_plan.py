"""The pure retention plan: whole old months, old unheld segments, and never anything younger than the minimum."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone

from gate_service.config import Settings
from gate_service.policy.model import SHANGHAI
from gate_service.retention.plan import (
    MIN_LEDGER_MONTHS,
    MIN_VIDEO_DAYS,
    Partition,
    Segment,
    as_json,
    describe,
    months_before,
    plan,
)

MONTHS = [f"passages_{y}{m:02d}" for y in range(2022, 2028) for m in range(1, 13)]


def seg(i: int, ended: datetime | None, **kw) -> Segment:
    start = (ended or datetime(2026, 1, 1, tzinfo=timezone.utc)) - timedelta(minutes=10)
    return Segment(i, kw.pop("gate_id", "g1"), start, ended, f"video/g1/{i}.mp4", kw.pop("bytes", 100), **kw)


def test_months_before_clamps_to_the_end_of_shorter_months():
    assert months_before(date(2026, 3, 31), 1) == date(2026, 2, 28)
    assert months_before(date(2026, 3, 2), 24) == date(2024, 3, 2)
    assert months_before(date(2024, 2, 29), 24) == date(2022, 2, 28)
    assert months_before(date(2026, 1, 15), 13) == date(2024, 12, 15)


def test_ledger_drops_only_whole_months_entirely_older_than_24_months():
    s = Settings()
    # 2026-03-02: rows before 2024-03-02 00:00 Shanghai may go; February 2024 ends 2024-03-01 00:00 UTC.
    names = [p.name for p in plan(date(2026, 3, 2), MONTHS, [], s).partitions]
    assert names[0] == "passages_202201" and names[-1] == "passages_202402"
    # A day earlier, February 2024 still holds rows younger than 24 months (its last day, Shanghai time).
    assert plan(date(2026, 3, 1), MONTHS, [], s).partitions[-1].name == "passages_202401"
    # Names that are not monthly partitions are reported, never dropped.
    odd = plan(date(2026, 3, 2), ["passages_default", "passages_2024x1"], [], s)
    assert not odd.partitions and len(odd.notes) == 2


def test_settings_below_the_minimum_are_raised_and_above_it_honoured():
    low = Settings(video_retention_days=30, ledger_retention_months=6)
    p = plan(date(2026, 3, 2), MONTHS, [seg(1, datetime(2026, 1, 1, tzinfo=timezone.utc))], low)
    assert (p.limits.video_days, p.limits.ledger_months) == (MIN_VIDEO_DAYS, MIN_LEDGER_MONTHS)
    assert len(p.notes) == 2 and all("minimum" in n for n in p.notes)
    assert p.partitions[-1].name == "passages_202402" and not p.segments
    high = Settings(video_retention_days=400, ledger_retention_months=36)
    p = plan(date(2026, 3, 2), MONTHS, [seg(1, datetime(2025, 3, 1, tzinfo=timezone.utc)),
                                        seg(2, datetime(2025, 1, 20, tzinfo=timezone.utc))], high)
    assert p.partitions[-1].name == "passages_202302" and not p.notes
    assert [s.id for s in p.segments] == [2]


def test_video_keeps_held_recording_and_deleted_segments():
    old = datetime(2025, 1, 1, tzinfo=timezone.utc)
    segments = [seg(1, old), seg(2, old, legal_hold=True, hold_case_ref="case-7"), seg(3, None),
                seg(4, old, deleted=True), seg(5, datetime(2026, 2, 1, tzinfo=timezone.utc))]
    p = plan(date(2026, 3, 2), [], segments, Settings())
    assert [s.id for s in p.segments] == [1]
    assert [s.id for s in p.held] == [2]
    text = "\n".join(describe(p))
    assert "kept under legal hold although old enough: 1" in text and "case case-7" in text
    assert as_json(p)["held"][0]["id"] == 2


def test_the_video_boundary_is_exactly_183_days_before_the_start_of_the_day():
    as_of = date(2026, 3, 2)
    edge = datetime.combine(as_of, time.min, SHANGHAI) - timedelta(days=183)
    p = plan(as_of, [], [seg(1, edge), seg(2, edge + timedelta(microseconds=1))], Settings())
    assert [s.id for s in p.segments] == [1]


def test_nothing_younger_than_the_minimum_is_ever_listed_and_everything_older_is():
    rng = random.Random(6)
    base = datetime(2023, 1, 1, tzinfo=timezone.utc)
    segments = [seg(i, base + timedelta(minutes=rng.randrange(0, 4 * 365 * 24 * 60)),
                    legal_hold=rng.random() < 0.1) for i in range(3000)]
    partitions = [Partition.from_name(n) for n in MONTHS]
    for settings in (Settings(), Settings(video_retention_days=10, ledger_retention_months=1),
                     Settings(video_retention_days=200, ledger_retention_months=30)):
        days = max(MIN_VIDEO_DAYS, settings.video_retention_days)
        months = max(MIN_LEDGER_MONTHS, settings.ledger_retention_months)
        for _ in range(60):
            as_of = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 4 * 365))
            p = plan(as_of, MONTHS, segments, settings)
            # Any moment of the day as_of: the job may run at any hour.
            earliest_run = datetime.combine(as_of, time.min, SHANGHAI)
            for s in p.segments:
                assert earliest_run - s.ended_at >= timedelta(days=days)
                assert not s.legal_hold
            keep_from = datetime.combine(months_before(as_of, months), time.min, SHANGHAI)
            for part in p.partitions:
                # The youngest row a partition can hold is just before its end.
                assert part.end <= keep_from
            listed = {s.id for s in p.segments} | {s.id for s in p.held}
            assert listed == {s.id for s in segments if s.ended_at <= earliest_run - timedelta(days=days)}
            assert {x.name for x in p.partitions} == {x.name for x in partitions if x.end <= keep_from}
