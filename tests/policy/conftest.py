from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from gate_service.policy import PLANS_DIR, load_policy

SH = ZoneInfo("Asia/Shanghai")


def local(d: str, t: str = "12:00") -> datetime:
    """A moment on a local (Asia/Shanghai) day."""
    return datetime.combine(date.fromisoformat(d), time.fromisoformat(t), tzinfo=SH)


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def plan():
    return load_policy(PLANS_DIR / "linfen-2024-25.toml")


@pytest.fixture(scope="session")
def base():
    return load_policy(PLANS_DIR / "base.toml")


@pytest.fixture(scope="session")
def draft():
    return load_policy(PLANS_DIR / "examples" / "stricter-2025-26.toml")
