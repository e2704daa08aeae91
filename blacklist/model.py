"""Vocabulary, the Entry the gates see, the error type, and local days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol

# China has kept UTC+8 without daylight saving since 1991; a fixed offset needs no tz database on the host.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

REASONS: dict[str, str] = {
    "obd_tampering": "OBD篡改",
    "device_removed": "拆除污染控制装置",
    "over_limit": "超标排放",
    "other": "其他",
}

STATUSES: dict[str, str] = {"active": "有效", "expired": "已到期", "revoked": "已撤销"}

# Only these change the list; ecology supervises and may read history; everyone else reads the active list.
MANAGERS = ("police", "admin")
AUDITORS = (*MANAGERS, "ecology")
READERS = (*AUDITORS, "kiosk", "enterprise")


class Principal(Protocol):
    """Who is acting; gate_service's Principal fits."""

    @property
    def role(self) -> str: ...

    @property
    def actor(self) -> str: ...

    @property
    def token_id(self) -> int | None: ...


@dataclass(frozen=True)
class SystemActor:
    """The scheduled expiry job."""

    role: str = "system"
    actor: str = "scheduler"
    token_id: int | None = None


class BlacklistError(Exception):
    """A refusal the service shows as {"error": {"code", "message", "field"}}; ``code`` is stable."""

    def __init__(self, http_status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message
        self.field = field


def local_day(at: datetime) -> date:
    """The Asia/Shanghai calendar day of a moment; a naive moment is taken as local time already."""
    if at.tzinfo is None:
        return at.date()
    return at.astimezone(SHANGHAI).date()


def today() -> date:
    return datetime.now(SHANGHAI).date()


@dataclass(frozen=True)
class Entry:
    """One open blacklist entry as the gates' decision path sees it."""

    plate: str
    reason: str
    valid_until: date | None
    added_at: datetime
    note: str | None
    case_ref: str | None = None
    checkpoint: str | None = None
    entry_id: int | None = None

    @property
    def reason_label(self) -> str:
        return REASONS.get(self.reason, self.reason)

    def in_force_on(self, day: date) -> bool:
        # valid_until is the last day the entry still applies, as in the policy's BlacklistEntry.
        return self.valid_until is None or day <= self.valid_until

    @classmethod
    def from_row(cls, row: Any) -> Entry:
        return cls(
            plate=row["plate"],
            reason=row["reason"],
            valid_until=row["valid_until"],
            added_at=row["added_at"],
            note=row["note"],
            case_ref=row["case_ref"],
            checkpoint=row["checkpoint"],
            entry_id=row["id"],
        )
