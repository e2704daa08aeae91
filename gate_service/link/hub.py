"""The platform's downlink: what sites must hold (blacklist, alerts, plan files, vehicle registry), versioned.

One task per platform process reads the streams' versions twice a second (a few index probes); each site's
long-poll waits on that, so a change reaches every online site within about half a second plus one round
trip, whichever replica the police wrote through. A site that was away sends its old versions and gets the
current snapshot (blacklist, alerts, plans) or the vehicle changes since its version, in pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import asyncpg

from gate_service.link.records import VEHICLE_FIELDS, encode

log = logging.getLogger(__name__)

VEHICLE_PAGE = 1000
_VERSIONS = """
SELECT (SELECT coalesce(max(id), 0) FROM blacklist_events) AS blacklist,
       (SELECT count(*) || '.' || coalesce(extract(epoch FROM max(greatest(created_at, cancelled_at)))::text, '0')
          FROM alerts WHERE platform_id IS NULL) AS alerts,
       (SELECT updated_at::text || '|' || plate FROM vehicles ORDER BY updated_at DESC, plate DESC LIMIT 1) AS vehicles,
       (SELECT coalesce(max(updated_at)::text, '') || '|' || coalesce(max(id), 0) FROM link_video_requests) AS video
"""


def plan_files(paths: tuple[Path, ...]) -> list[dict[str, str]]:
    """The extra plan files this platform loaded (CLEANGATE_POLICY_PATHS); the bundled ones every site has."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        files.extend(sorted(p.glob("*.toml")) if p.is_dir() else [p] if p.suffix == ".toml" else [])
    return [{"name": f.name, "text": f.read_text(encoding="utf-8")} for f in files]


class Hub:
    def __init__(self, pool: asyncpg.Pool, policy_paths: tuple[Path, ...] = (), *, poll: float = 0.5) -> None:
        self.pool = pool
        self.poll = poll
        self.plans = plan_files(policy_paths)
        plans_version = hashlib.sha256(json.dumps(self.plans, sort_keys=True).encode()).hexdigest()[:16]
        self.versions: dict[str, str] = {"plans": plans_version}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin watching; called on the first downlink request, so a service no site talks to never polls."""
        if self._task is not None:
            return
        await self.refresh()
        self._task = asyncio.create_task(self._watch(), name="link-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh(self) -> None:
        row = await self.pool.fetchrow(_VERSIONS)
        fresh = {**self.versions, "blacklist": str(row["blacklist"]), "alerts": row["alerts"],
                 "vehicles": row["vehicles"] or "", "video": row["video"]}
        if fresh != self.versions:
            self.versions = fresh
            self._changed.set()
            self._changed = asyncio.Event()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll)
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - the database may be away; sites keep their copies
                log.debug("link hub: versions not read (%s)", exc)

    @staticmethod
    def parse_since(text: str) -> dict[str, str]:
        try:
            value = json.loads(text) if text else {}
        except json.JSONDecodeError:
            value = {}
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    def newer(self, since: dict[str, str]) -> bool:
        return any(since.get(k) != v for k, v in self.versions.items())

    async def wait_newer(self, since: dict[str, str], wait: float) -> None:
        await self.start()
        if self.newer(since) or wait <= 0:
            return
        event = self._changed
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), wait)

    async def changes(self, since: dict[str, str], site_id: int | None = None) -> dict[str, Any]:
        await self.start()
        versions = dict(self.versions)
        out: dict[str, Any] = {"versions": versions, "streams": {}}
        async with self.pool.acquire() as conn:
            if since.get("blacklist") != versions["blacklist"]:
                rows = await conn.fetch(
                    """SELECT plate, reason, valid_until, note, case_ref, checkpoint, added_at FROM blacklist_entries
                       WHERE closed_at IS NULL AND (valid_until IS NULL OR valid_until >= shanghai_day(now()))
                       ORDER BY plate""")
                out["streams"]["blacklist"] = {"version": versions["blacklist"], "entries": [dict(r) for r in rows]}
            if since.get("alerts") != versions["alerts"]:
                rows = await conn.fetch(
                    """SELECT id, level, starts_at, ends_at, note, declared_by, cancelled_at FROM alerts
                       WHERE platform_id IS NULL AND ends_at > now() - interval '7 days' ORDER BY id""")
                out["streams"]["alerts"] = {"version": versions["alerts"], "alerts": [dict(r) for r in rows]}
            if site_id is not None and since.get("video") != versions.get("video"):
                # One version for all sites (a change wakes them all, cheaply); each gets its own requests.
                from gate_service.link.clip_requests import open_requests

                out["streams"]["video"] = {"version": versions["video"], "requests": await open_requests(conn, site_id)}
            if since.get("plans") != versions["plans"]:
                out["streams"]["plans"] = {"version": versions["plans"], "files": self.plans}
            if since.get("vehicles") != versions["vehicles"] and versions["vehicles"]:
                after, _, plate = since.get("vehicles", "").partition("|")
                rows = await conn.fetch(
                    f"""SELECT {', '.join(VEHICLE_FIELDS)}, updated_at::text AS cursor FROM vehicles
                        WHERE $1::text = '' OR (updated_at, plate) > ($1::text::timestamptz, $2)
                        ORDER BY updated_at, plate LIMIT {VEHICLE_PAGE}""", after, plate)
                page = [encode(r, VEHICLE_FIELDS) for r in rows]
                last = f"{rows[-1]['cursor']}|{rows[-1]['plate']}" if rows else versions["vehicles"]
                out["streams"]["vehicles"] = {"version": last, "vehicles": page, "more": len(rows) == VEHICLE_PAGE}
        return out
