"""The site's downlink: a long-poll it opens to the platform (proxy- and NAT-friendly), and applying what comes
down to the site's own tables, through the owners' own code (the blacklist through its store, so its cache and
NOTIFY fire). The last copy of each stream is kept in link_downlink, so a restart offline still knows it."""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from gate_service.link.adapter import LinkDown, PlatformAdapter, Refused
from gate_service.link.records import upsert_vehicle
from gate_service.link.status import LinkStatus
from gate_service.link.uplink import Backoff

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlatformActor:
    """Who a change applied from the platform is recorded as at the site (blacklist events, alerts)."""

    role: str = "platform"
    actor: str = "platform"
    token_id: int | None = None


class Downlink:
    def __init__(self, pool: asyncpg.Pool, adapter: PlatformAdapter, status: LinkStatus, *, blacklist: Any,
                 plans_dir: Path, reload_plans: Any = None, wait: int = 25, max_backoff: float = 60.0,
                 on_video: Any = None) -> None:
        self.pool, self.adapter, self.status = pool, adapter, status
        self.blacklist = blacklist
        self.plans_dir = plans_dir
        self.reload_plans = reload_plans
        self.on_video = on_video  # hands the site's open video requests to its clip uploader
        self.wait = wait
        self.backoff = Backoff(cap=max_backoff)
        self.versions: dict[str, str] = {}

    async def load(self) -> None:
        # Not the video requests: after a restart the uploader holds none, so it asks for the current list.
        for r in await self.pool.fetch("SELECT stream, version, received_at FROM link_downlink WHERE stream <> 'video'"):
            self.versions[r["stream"]] = r["version"]
            self.status.applied(r["stream"], r["version"], r["received_at"])

    async def run(self) -> None:
        while True:
            try:
                answer = await self.adapter.downlink(self.versions, self.wait)
                await self.apply(answer)
                self.backoff.reset()
            except (LinkDown, Refused) as exc:
                self.status.down(str(exc))
                await asyncio.sleep(self.backoff.next())
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("downlink: could not apply (%s); retrying", exc)
                await asyncio.sleep(self.backoff.next())
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a bad answer must not end the downlink for good
                log.exception("downlink: unexpected failure; retrying")
                await asyncio.sleep(self.backoff.next())

    async def apply(self, answer: dict[str, Any]) -> None:
        streams = answer.get("streams", {})
        for name, apply in (("blacklist", self._blacklist), ("alerts", self._alerts), ("plans", self._plans),
                            ("vehicles", self._vehicles), ("video", self._video)):
            if name in streams:
                data = streams[name]
                await apply(data)
                await self.pool.execute(
                    """INSERT INTO link_downlink (stream, version, payload) VALUES ($1, $2, $3)
                       ON CONFLICT (stream) DO UPDATE SET version = EXCLUDED.version, payload = EXCLUDED.payload,
                           received_at = now()""", name, data["version"],
                    {k: v for k, v in data.items() if name in ("blacklist", "alerts", "plans") or k != "vehicles"})
                self.versions[name] = data["version"]
        self.status.up(answer.get("versions"))
        # An answer, changed or not, confirms the copies are current as of now.
        for name in answer.get("versions", {}):
            if name in self.versions:
                self.status.applied(name, self.versions[name])

    async def _blacklist(self, data: dict[str, Any]) -> None:
        from blacklist.store import Listing

        wanted = {e["plate"]: e for e in data["entries"]}
        local = {r["plate"]: r for r in await self.pool.fetch(
            "SELECT plate, valid_until, added_role FROM blacklist_entries WHERE closed_at IS NULL")}
        who = PlatformActor()
        for plate, e in wanted.items():
            until = date.fromisoformat(e["valid_until"]) if e.get("valid_until") else None
            have = local.get(plate)
            if have is not None and have["valid_until"] == until:
                continue
            await self.blacklist.add(Listing(plate=plate, reason=e["reason"], valid_until=until, note=e.get("note"),
                                             case_ref=e.get("case_ref"), checkpoint=e.get("checkpoint")), who)
        for plate, have in local.items():
            # Only what the platform listed is lifted by the platform; the site's own entries stay.
            if plate not in wanted and have["added_role"] == "platform":
                await self.blacklist.revoke(plate, "平台已撤销 / lifted at the platform", who)

    async def _alerts(self, data: dict[str, Any]) -> None:
        for a in data["alerts"]:
            await self.pool.execute(
                """INSERT INTO alerts (level, starts_at, ends_at, note, declared_by, cancelled_at, platform_id)
                   VALUES ($1, $2::text::timestamptz, $3::text::timestamptz, $4, $5, $6::text::timestamptz, $7)
                   ON CONFLICT (platform_id) DO UPDATE SET level = EXCLUDED.level, starts_at = EXCLUDED.starts_at,
                       ends_at = EXCLUDED.ends_at, note = EXCLUDED.note, cancelled_at = EXCLUDED.cancelled_at""",
                a["level"], a["starts_at"], a["ends_at"], a.get("note"), f"平台 {a.get('declared_by', '')}".strip(),
                a.get("cancelled_at"), a["id"])

    async def _plans(self, data: dict[str, Any]) -> None:
        # Written beside the live folder and loaded from there first: a plan the site cannot load (a clash with
        # a bundled plan, a syntax error) is refused and logged, and never reaches the folder the next start reads.
        candidate = self.plans_dir.with_name(self.plans_dir.name + ".new")
        shutil.rmtree(candidate, ignore_errors=True)
        candidate.mkdir(parents=True)
        for f in data["files"]:
            name = Path(f["name"]).name  # never a path the platform chose
            if name.endswith(".toml"):
                (candidate / name).write_text(f["text"], encoding="utf-8")
        if self.reload_plans is not None:
            try:
                self.reload_plans(candidate)
            except Exception as exc:  # noqa: BLE001 - PolicyError and friends: keep judging by the old plans
                log.error("plan files from the platform refused: %s", exc)
                shutil.rmtree(candidate, ignore_errors=True)
                return
        old = self.plans_dir.with_name(self.plans_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.plans_dir.exists():
            self.plans_dir.rename(old)
        candidate.rename(self.plans_dir)
        shutil.rmtree(old, ignore_errors=True)

    async def _video(self, data: dict[str, Any]) -> None:
        if self.on_video is not None:
            self.on_video(data.get("requests", []))

    async def _vehicles(self, data: dict[str, Any]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for v in data["vehicles"]:
                await upsert_vehicle(conn, v)
