"""The HJ 1321-2023 video retention setting: 12 months by name, never below the plan's 6."""

from __future__ import annotations

from datetime import date

from gate_service.config import Settings
from gate_service.retention.plan import cutoffs


def test_hj1321_keeps_video_366_days_and_nothing_goes_below_183(monkeypatch):
    monkeypatch.setenv("CLEANGATE_VIDEO_RETENTION_DAYS", "hj1321")
    hj = Settings.from_env()
    assert hj.video_retention_days == 366
    video_cutoff, _, _ = cutoffs(date(2026, 12, 1), hj)
    assert video_cutoff.date() <= date(2025, 11, 30)  # a year and a day back, in Linfen's time or UTC
    for raw, days in (("HJ1321", 366), ("plan", 183), ("10", 183), ("400", 400), ("", 183)):
        monkeypatch.setenv("CLEANGATE_VIDEO_RETENTION_DAYS", raw)
        assert Settings.from_env().video_retention_days == days, raw
