"""How a site's link stands, for /healthz and the kiosk (黑名单更新于 … / 与平台断开 …)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class LinkStatus:
    platform_url: str
    connected: bool = False
    last_contact: datetime | None = None
    disconnected_since: datetime | None = None
    last_error: str | None = None
    pending: dict[str, int] = field(default_factory=dict)
    gates: dict[str, Any] = field(default_factory=dict)
    # stream -> (version, received_at) of the last downlink copy applied (loaded from link_downlink at start).
    downlink: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    platform_versions: dict[str, str] = field(default_factory=dict)

    def up(self, versions: dict[str, str] | None = None) -> None:
        self.connected, self.last_contact, self.disconnected_since, self.last_error = True, _now(), None, None
        if versions:
            self.platform_versions = dict(versions)

    def down(self, error: str) -> None:
        if self.connected or self.disconnected_since is None:
            self.disconnected_since = _now()
        self.connected, self.last_error = False, error

    def applied(self, stream: str, version: str, at: datetime | None = None) -> None:
        self.downlink[stream] = (version, at or _now())

    def public(self) -> dict[str, Any]:
        now = _now()
        bl = self.downlink.get("blacklist")
        return {
            "role": "site",
            "platform_url": self.platform_url,
            "connected": self.connected,
            "last_contact": self.last_contact,
            "disconnected_since": self.disconnected_since,
            "disconnected_s": round((now - self.disconnected_since).total_seconds()) if self.disconnected_since else 0,
            "last_error": self.last_error,
            "pending": sum(self.pending.values()),
            "gates": self.gates,
            "blacklist_updated_at": bl[1] if bl else None,
            "blacklist_age_s": round((now - bl[1]).total_seconds()) if bl else None,
            "downlink": {k: {"version": v, "received_at": t} for k, (v, t) in self.downlink.items()},
        }
