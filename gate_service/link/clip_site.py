"""The site's half of video requests: the downlink hands over the requests open for this site; for each, the
segments of the gate covering the period are uploaded in chunks read from the media store at an offset (never a
whole segment in memory), resumed from what the platform says it holds, and the outcome is reported per
segment: stored, gone (retention deleted it, or the file is lost) or failed."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import asyncpg

from gate_service.link.adapter import LinkDown, PlatformAdapter, Refused
from gate_service.link.records import SEGMENT_FIELDS, encode
from gate_service.link.uplink import Backoff

log = logging.getLogger(__name__)
CHUNK = 4 * 1024 * 1024


class ClipUploader:
    def __init__(self, pool: asyncpg.Pool, adapter: PlatformAdapter, media_store: Any, *, chunk: int = CHUNK,
                 retry: float = 10.0, max_backoff: float = 60.0) -> None:
        self.pool, self.adapter, self.store = pool, adapter, media_store
        self.chunk, self.retry = chunk, retry
        self.backoff = Backoff(cap=max_backoff)
        self.requests: dict[int, dict[str, Any]] = {}
        self._wake = asyncio.Event()

    def offer(self, requests: list[dict[str, Any]]) -> None:
        """The downlink's current list of this site's open requests (replaces the last one)."""
        self.requests = {int(r["id"]): r for r in requests}
        self._wake.set()

    async def run(self) -> None:
        delay = self.retry
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            delay = self.retry
            for req in list(self.requests.values()):
                try:
                    await self.fulfil(req)
                    self.backoff.reset()
                except LinkDown as exc:
                    log.info("video request %s: platform unreachable (%s); will resume", req["id"], exc)
                    delay = self.backoff.next()
                    break
                except Refused as exc:
                    log.warning("video request %s refused by the platform: %s", req["id"], exc)
                    self.requests.pop(req["id"], None)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("video request %s: %s; will retry", req["id"], exc)
                    delay = self.backoff.next()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - one bad request must not stop the others for good
                    log.exception("video request %s: unexpected failure", req["id"])
                    delay = self.backoff.next()

    async def fulfil(self, req: dict[str, Any]) -> None:
        segs = await self.pool.fetch(
            f"""SELECT {', '.join(SEGMENT_FIELDS)}, storage_key, status, deleted_at, note FROM video_segments
                WHERE gate_id = $1 AND started_at < $3 AND coalesce(ended_at, 'infinity') > $2 ORDER BY started_at""",
            req["gate_id"], datetime.fromisoformat(req["from"]), datetime.fromisoformat(req["to"]))
        if any(s["status"] == "recording" for s in segs):
            return  # the period is still being recorded: asked again on the next round
        if segs:
            # The platform checks every upload against the index: make sure it has these rows (the side stream
            # may be behind).
            await self.adapter.send_records({"video_segments": [encode(s, SEGMENT_FIELDS) for s in segs]})
        report: list[dict[str, Any]] = []
        for s in segs:
            report.append(await self._segment(req["id"], s))
            if report[-1]["state"] == "failed" and report[-1].get("final"):
                break
        for r in report:
            r.pop("final", None)
        await self.adapter.report_video(int(req["id"]), {"segments": report})
        self.requests.pop(req["id"], None)
        log.info("video request %s: %s", req["id"], ", ".join(f"{r['segment_id']} {r['state']}" for r in report) or
                 "no video in that period")

    async def _segment(self, request_id: int, s: Any) -> dict[str, Any]:
        sid = s["id"]
        if s["deleted_at"] is not None:
            return {"segment_id": sid, "state": "gone",
                    "reason": f"已按保存期限于 {s['deleted_at']:%Y-%m-%d} 删除 / deleted by retention"}
        if not s["bytes"] or not s["sha256"]:
            return {"segment_id": sid, "state": "failed",
                    "reason": f"片段未能保存 / nothing of the segment was saved: {s['note'] or ''}".strip()}
        try:
            await self.upload(request_id, s)
        except FileNotFoundError:
            return {"segment_id": sid, "state": "gone", "reason": "站点录像文件缺失 / the file is missing at the site"}
        except Refused as exc:
            if exc.code == "sha256_mismatch":
                return {"segment_id": sid, "state": "failed", "reason": exc.message, "final": True}
            raise
        return {"segment_id": sid, "state": "stored"}

    async def upload(self, request_id: int, s: Any) -> None:
        state = await self.adapter.video_offset(s["id"])
        offset = int(state.get("received") or 0)
        while not state.get("stored"):
            data = await self.store.read(s["storage_key"], offset, self.chunk)
            if not data:
                raise FileNotFoundError(f"{s['storage_key']} ends at {offset}, its index says {s['bytes']} bytes")
            try:
                state = await self.adapter.put_video_chunk(s["id"], offset, data, request_id)
            except Refused as exc:
                if exc.code != "offset_mismatch" or "received" not in exc.detail:
                    raise
                state = {"received": exc.detail["received"], "stored": False}  # an answer lost: go on from there
            offset = int(state.get("received") or 0)
