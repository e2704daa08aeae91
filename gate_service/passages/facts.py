"""The registry facts a decision needs, read through a memory of the last answers.

While PostgreSQL answers, every lookup goes to it (so a vehicle registered a moment ago on another replica is
known) and the answer is remembered. When it does not, gates keep deciding from the remembered registry and
alerts (issue 9: an outage must not stop the barriers). At start the whole registry is loaded once, so the
memory covers vehicles that have not passed yet.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

import asyncpg

from gate_service.registry import store as registry

log = logging.getLogger(__name__)

_SEVERITY = {"yellow": 1, "orange": 2, "red": 3}

from gate_service.db.outage import DB_DOWN, is_db_down  # noqa: E402,F401 - re-exported for callers


def strongest_alert(levels: Iterable[str]) -> str | None:
    """Overlapping alerts: the most severe one is in force."""
    return max(levels, key=_SEVERITY.__getitem__, default=None)


class FactsCache:
    def __init__(self) -> None:
        self.gates: dict[str, dict | None] = {}
        self.enterprises: dict[str, dict | None] = {}
        self.vehicles: dict[str, dict | None] = {}
        self.alerts: list[tuple[datetime, datetime, str]] = []

    async def load(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            for r in await conn.fetch("SELECT * FROM gates"):
                self.gates[r["id"]] = dict(r)
            for r in await conn.fetch("SELECT * FROM enterprises"):
                self.enterprises[r["id"]] = dict(r)
            async with conn.transaction():
                async for r in conn.cursor("SELECT * FROM vehicles", prefetch=5000):
                    self.vehicles[r["plate"]] = dict(r)
            await self._load_alerts(conn)
        log.info("registry cached: %d gates, %d enterprises, %d vehicles", len(self.gates),
                 len(self.enterprises), len(self.vehicles))

    async def _load_alerts(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch("SELECT starts_at, ends_at, level FROM alerts WHERE cancelled_at IS NULL")
        self.alerts = [(r["starts_at"], r["ends_at"], r["level"]) for r in rows]

    async def gate(self, conn: asyncpg.Connection | None, ident: str) -> dict | None:
        if conn is not None:
            self.gates[ident] = await registry.get_gate(conn, ident)
        return self.gates.get(ident)

    async def enterprise(self, conn: asyncpg.Connection | None, ident: str | None) -> dict | None:
        if ident is None:
            return None
        if conn is not None:
            self.enterprises[ident] = await registry.get_enterprise(conn, ident)
        return self.enterprises.get(ident)

    async def vehicle(self, conn: asyncpg.Connection | None, plate: str) -> dict | None:
        if conn is not None:
            self.vehicles[plate] = await registry.get_vehicle(conn, plate)
        return self.vehicles.get(plate)

    async def alert_level(self, conn: asyncpg.Connection | None, at: datetime) -> str | None:
        if conn is not None:
            await self._load_alerts(conn)
        levels = [level for start, end, level in self.alerts if start <= at < end]
        return strongest_alert(levels)
