"""The gates hub: one ingest per gate, snapshots of settled passages, and pushing them to kiosks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any
from uuid import uuid4

from aiohttp import web

from gate_service import keys
from gate_service.gates.ingest import GateIngest, ReaderPool, encode_jpeg
from gate_service.gates.tracker import Settled, TrackerConfig
from gate_service.passages.judge import PassageInput

log = logging.getLogger(__name__)


class GatesHub:
    def __init__(self, app: web.Application, *, tracker_config: TrackerConfig | None = None,
                 workers: int | None = None) -> None:
        self.app = app
        self.pool = ReaderPool(workers, local_provinces=app[keys.SETTINGS].local_provinces,
                               engine=app[keys.SETTINGS].plate_engine)
        self.tracker_config = tracker_config
        self.gates: dict[str, GateIngest] = {}
        self._ticker: asyncio.Task[None] | None = None

    def ingest(self, gate_id: str) -> GateIngest:
        gate = self.gates.get(gate_id)
        if gate is None:
            judge = self.app.get(keys.JUDGE)
            gate = GateIngest(
                gate_id, self.pool, self._settled, metrics=self.app[keys.METRICS],
                recorder=self.app.get(keys.VIDEO_RECORDER), tracker_config=self.tracker_config,
                # A single weak read the gate would deny waits for the next frame (tracker.py).
                would_deny=(lambda plate, at: judge.would_deny(gate_id, plate, at)) if judge is not None else None,
            )
            self.gates[gate_id] = gate
        return gate

    async def _settled(self, gate_id: str, settled: Settled, direction: str) -> dict[str, Any]:
        """A tracker settled on a plate: keep its pictures, decide, record, tell the gate's kiosks."""
        payload = settled.payload or {}
        store = self.app.get(keys.MEDIA_STORE)
        snapshot_ref = crop_ref = None
        if store is not None:
            from gate_service.video.storage import media_key

            # Storage keys stay ASCII (object stores and shells mangle Chinese); the ledger row names the plate.
            name = f"{settled.first_at.strftime('%H%M%S')}-{settled.track_id}-{uuid4().hex[:10]}"
            try:
                if payload.get("jpeg"):
                    snapshot_ref = (await store.put(media_key("snapshots", gate_id, settled.first_at,
                                                              name + ".jpg"), payload["jpeg"])).key
                if settled.best.crop is not None:
                    crop_ref = (await store.put(media_key("crops", gate_id, settled.first_at, name + ".jpg"),
                                                encode_jpeg(settled.best.crop))).key
            except Exception:  # noqa: BLE001 - a lost snapshot must not lose the passage
                log.exception("could not store the snapshot of %s at %s", settled.plate, gate_id)
        segment_id, offset_ms = payload.get("video") or (None, None)
        item = PassageInput(
            gate_id=gate_id,
            plate=settled.plate,
            direction=direction,
            at=settled.first_at,
            source="camera",
            plate_color=settled.color if settled.color != "unknown" else None,
            read=settled.read_json(),
            snapshot_ref=snapshot_ref,
            crop_ref=crop_ref,
            video_segment_id=segment_id,
            video_offset_ms=offset_ms,
            # The tracker's own id makes a retried write of the same settled track idempotent.
            client_ref=f"track:{settled.first_at.timestamp():.3f}:{settled.track_id}",
        )
        # The token of the kiosk whose frame was the track's best read: who sent what the passage rests on.
        judged = await self.app[keys.JUDGE].record(item, token_id=payload.get("token_id"),
                                                   actor=f"camera:{gate_id}")
        # How often the fast path settles (and how often only a vehicle leaving does) is worth watching per gate.
        self.app[keys.METRICS].settled.inc(gate=gate_id, by=settled.reason)
        answer = judged.response()
        await self.broadcast(gate_id, {"type": "passage", "passage": answer})
        return answer

    async def broadcast(self, gate_id: str, message: dict[str, Any]) -> None:
        gate = self.gates.get(gate_id)
        if gate is not None:
            await gate.notify(message)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = datetime.now(timezone.utc)
            for gate in list(self.gates.values()):
                try:
                    await gate.tick(now)
                except Exception:  # noqa: BLE001 - keep ticking the other gates
                    log.exception("tracker tick failed at gate %s", gate.gate_id)

    def start(self) -> None:
        self._ticker = asyncio.ensure_future(self._tick_forever())

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for gate in list(self.gates.values()):
            with contextlib.suppress(Exception):
                await gate.tick(datetime.max.replace(tzinfo=timezone.utc))
        self.pool.close()


async def gates_context(app: web.Application) -> AsyncIterator[None]:
    hub = GatesHub(app)
    app[keys.GATES] = hub
    hub.start()
    yield
    await hub.close()
