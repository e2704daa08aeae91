"""Which local days are "ordinary working days", and an enterprise's baseline over them. Pure.

An **ordinary working day** of an enterprise (the days an alert day is compared against) is a local
(Asia/Shanghai) day that
1. is Monday to Friday,
2. is not a statutory holiday (``HOLIDAYS``: the State Council's 放假 days of 2024–2026; a deployment extends the
   list with ``extra_holidays``), nor a working weekend day (调休) — those are left out rather than guessed at,
3. had no heavy-pollution alert of any level (yellow, orange or red, not cancelled) in force at any moment, and
4. had at least one allowed passage at the enterprise's gates: a day on which the gates reported nothing tells
   nothing about traffic (gates down, works closed) and would drag a median to zero.

The **baseline** of a day is the median, over the previous ``BASELINE_DAYS`` (10) ordinary working days before
it (looking back at most ``LOOKBACK_DAYS``), of the figure being compared; none (null) when fewer than
``MIN_BASELINE_DAYS`` such days exist.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import date, timedelta

BASELINE_DAYS = 10
MIN_BASELINE_DAYS = 5
LOOKBACK_DAYS = 60


def _span(first: str, last: str) -> list[date]:
    lo, hi = date.fromisoformat(first), date.fromisoformat(last)
    return [lo + timedelta(days=i) for i in range((hi - lo).days + 1)]


# 国务院办公厅 holiday notices (放假安排) for 2024, 2025 and 2026.
HOLIDAYS: frozenset[date] = frozenset(
    d for first, last in (
        ("2024-01-01", "2024-01-01"), ("2024-02-10", "2024-02-17"), ("2024-04-04", "2024-04-06"),
        ("2024-05-01", "2024-05-05"), ("2024-06-10", "2024-06-10"), ("2024-09-15", "2024-09-17"),
        ("2024-10-01", "2024-10-07"),
        ("2025-01-01", "2025-01-01"), ("2025-01-28", "2025-02-04"), ("2025-04-04", "2025-04-06"),
        ("2025-05-01", "2025-05-05"), ("2025-05-31", "2025-06-02"), ("2025-10-01", "2025-10-08"),
        ("2026-01-01", "2026-01-03"), ("2026-02-15", "2026-02-23"), ("2026-04-04", "2026-04-06"),
        ("2026-05-01", "2026-05-05"), ("2026-06-19", "2026-06-21"), ("2026-09-25", "2026-09-27"),
        ("2026-10-01", "2026-10-07"),
    ) for d in _span(first, last)
)


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def is_working_day(day: date, extra_holidays: Collection[date] = ()) -> bool:
    return day.weekday() < 5 and day not in HOLIDAYS and day not in extra_holidays


def ordinary_days(
    candidates: Iterable[date],
    alert_days: Collection[date],
    reporting_days: Collection[date],
    extra_holidays: Collection[date] = (),
) -> list[date]:
    """The ordinary working days among ``candidates`` (sorted): see the module's definition."""
    return sorted(d for d in candidates if is_working_day(d, extra_holidays) and d not in alert_days
                  and d in reporting_days)


def baseline_days(day: date, ordinary: list[date], n: int = BASELINE_DAYS,
                  lookback: int = LOOKBACK_DAYS) -> list[date]:
    """The last ``n`` ordinary days strictly before ``day`` and no more than ``lookback`` days back."""
    earliest = day - timedelta(days=lookback)
    return [d for d in ordinary if earliest <= d < day][-n:]


def median_of(days: list[date], value: Callable[[date], float]) -> float | None:
    if len(days) < MIN_BASELINE_DAYS:
        return None
    return float(statistics.median(value(d) for d in days))


def baseline(day: date, ordinary: list[date], counts: Mapping[date, int]) -> tuple[float | None, list[date]]:
    """(median over the baseline days or None, the days used)."""
    used = baseline_days(day, ordinary)
    return median_of(used, lambda d: counts.get(d, 0)), used


def share(value: float, base: float | None) -> float | None:
    """value / base, 4 digits; None without a baseline or with a zero one."""
    if not base:
        return None
    return round(value / base, 4)
