"""The uplink's lazier streams: snapshot and crop JPEGs of acknowledged passages, and the side records
(vehicles registered at the site, monthly transport volumes, the video index). Each has a cursor in
link_cursors that moves only after the platform answered, so a restart resends at most one page."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from gate_service.link.adapter import Refused
from gate_service.link.records import SEGMENT_FIELDS, VEHICLE_FIELDS, VOLUME_FIELDS, encode

log = logging.getLogger(__name__)
PAGE = 200


async def _cursor(pool: asyncpg.Pool, stream: str, default: str) -> str:
    return await pool.fetchval("SELECT position FROM link_cursors WHERE stream = $1", stream) or default


async def _move(pool: asyncpg.Pool, stream: str, position: str) -> None:
    await pool.execute(
        """INSERT INTO link_cursors (stream, position) VALUES ($1, $2)
           ON CONFLICT (stream) DO UPDATE SET position = EXCLUDED.position, updated_at = now()""", stream, position)


class SideStreams:
    def __init__(self, pool: asyncpg.Pool, media_store: Any) -> None:
        self.pool = pool
        self.media_store = media_store

    async def push(self, uplink: Any) -> None:
        await self.push_media(uplink)
        await self.push_records(uplink)
        if self.media_store is not None:
            from gate_service.link.documents import push_documents

            await push_documents(self.pool, self.media_store, uplink.adapter, _cursor, _move)

    async def push_media(self, uplink: Any) -> None:
        if self.media_store is None:
            return
        for gate_id, state in uplink.gates.items():
            acked = state.get("acked_seq") or 0
            stream = f"media:{gate_id}"
            done = int(await _cursor(self.pool, stream, "0"))
            if acked <= done:
                continue
            rows = await self.pool.fetch(
                """SELECT gate_seq, snapshot_ref, crop_ref FROM passages WHERE gate_id = $1 AND gate_seq > $2
                   AND gate_seq <= $3 ORDER BY gate_seq LIMIT $4""", gate_id, done, acked, PAGE)
            for r in rows:
                for ref in (r["snapshot_ref"], r["crop_ref"]):
                    if not ref:
                        continue
                    try:
                        data = await self.media_store.read(ref)
                    except (FileNotFoundError, ValueError):
                        continue  # retention took it, or it was never written: nothing to send
                    try:
                        await uplink.adapter.put_media(ref, data)
                    except Refused as exc:
                        log.warning("platform refused media %s: %s", ref, exc)
                done = r["gate_seq"]
            await _move(self.pool, stream, str(done))

    async def push_records(self, uplink: Any) -> None:
        vehicles_at = await _cursor(self.pool, "vehicles", "")
        after, _, plate = vehicles_at.partition("|")
        vehicles = await self.pool.fetch(
            f"""SELECT {', '.join(VEHICLE_FIELDS)}, updated_at::text AS cursor FROM vehicles
                WHERE $1::text = '' OR (updated_at, plate) > ($1::text::timestamptz, $2)
                ORDER BY updated_at, plate LIMIT {PAGE}""", after, plate)
        volumes_at = await _cursor(self.pool, "volumes", "")
        volumes = await self.pool.fetch(
            f"""SELECT {', '.join(VOLUME_FIELDS)}, updated_at::text AS cursor FROM transport_volumes
                WHERE $1::text = '' OR updated_at > $1::text::timestamptz ORDER BY updated_at LIMIT {PAGE}""",
            volumes_at)
        segments_at = int(await _cursor(self.pool, "video", "0"))
        segments = await self.pool.fetch(
            f"""SELECT {', '.join(SEGMENT_FIELDS)} FROM video_segments WHERE id > $1 AND status <> 'recording'
                ORDER BY id LIMIT {PAGE}""", segments_at)
        # A hold set at the site after the segment's index row went up: sent again, so the platform asks for
        # the clip (a 'site_hold' request) and keeps its copy. By (held_at, id), like the other cursors.
        holds_at, _, hold_id = (await _cursor(self.pool, "video-holds", "")).partition("|")
        holds = await self.pool.fetch(
            f"""SELECT {', '.join(SEGMENT_FIELDS)}, held_at::text AS cursor FROM video_segments
                WHERE legal_hold AND status <> 'recording'
                  AND ($1::text = '' OR (held_at, id) > ($1::text::timestamptz, $2::bigint))
                ORDER BY held_at, id LIMIT {PAGE}""", holds_at, int(hold_id or 0))
        # A hold released at the site: from its audit trail (the release clears held_at), sent so the platform's
        # copy falls under normal retention. Only segments not held again since; a new hold goes up as a hold.
        releases_at = int(await _cursor(self.pool, "video-releases", "0"))
        releases = await self.pool.fetch(
            f"""SELECT a.id AS audit_id, v.id, v.gate_id, a.at FROM audit_log a
                JOIN video_segments v ON a.target = v.id::text
                WHERE a.action = 'video.release' AND a.id > $1 AND NOT v.legal_hold
                  -- the last 2 s wait a round: a release committing just after a later one is not passed over
                  AND a.at < now() - interval '2 seconds'
                ORDER BY a.id LIMIT {PAGE}""", releases_at)
        if not (vehicles or volumes or segments or holds or releases):
            return
        try:
            await uplink.adapter.send_records({
                "vehicles": [encode(r, VEHICLE_FIELDS) for r in vehicles],
                "volumes": [encode(r, VOLUME_FIELDS) for r in volumes],
                "video_segments": [encode(r, SEGMENT_FIELDS) for r in segments]
                + [encode(r, SEGMENT_FIELDS) for r in holds],
                "video_releases": [{"id": r["id"], "gate_id": r["gate_id"], "released_at": r["at"].isoformat()}
                                   for r in releases],
            })
        except Refused as exc:
            # Refused for good (another enterprise's volumes, say): logged, and not offered again.
            log.warning("platform refused side records: %s", exc)
        if vehicles:
            await _move(self.pool, "vehicles", f"{vehicles[-1]['cursor']}|{vehicles[-1]['plate']}")
        if volumes:
            await _move(self.pool, "volumes", volumes[-1]["cursor"])
        if segments:
            await _move(self.pool, "video", str(segments[-1]["id"]))
        if holds:
            await _move(self.pool, "video-holds", f"{holds[-1]['cursor']}|{holds[-1]['id']}")
        if releases:
            await _move(self.pool, "video-releases", str(releases[-1]["audit_id"]))
