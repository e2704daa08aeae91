"""Video requests and document photos at the platform, over HTTP against the real app and PostgreSQL, with the
site played by the real adapter (CleangateHttp) and the site's own clip uploader reading a real media store."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta, timezone

import pytest

from gate_service import keys as app_keys
from gate_service.link.adapter import CleangateHttp, Refused
from gate_service.link.clip_site import ClipUploader
from gate_service.video.storage import LocalStore, media_key
from tests.link.test_batches import GATE, _site, chain
from tests.waiting import until

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


async def _linked(client, app, admin, tmp_path):
    site = await _site(client, app, admin, tmp_path)
    status, _ = await site.send(chain(3))  # the gate's chain: now the platform knows which site runs it
    assert status == 200
    adapter = CleangateHttp(str(client.server.make_url("")).rstrip("/"), site.headers["Authorization"][7:])
    return site, adapter


def _segment(seg_id: int, data: bytes, start: datetime = T0, **extra) -> dict:
    return {"id": seg_id, "gate_id": GATE, "started_at": start.isoformat(),
            "ended_at": (start + timedelta(minutes=10)).isoformat(), "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data), "legal_hold": False, **extra}


async def _request(client, headers, **body):
    body = {"gate_id": GATE, "from": (T0 + timedelta(minutes=2)).isoformat(),
            "to": (T0 + timedelta(minutes=3)).isoformat(), "reason": "稽查:核对进厂车辆", **body}
    resp = await client.post("/api/v1/video-requests", headers=headers, json=body)
    return resp.status, await resp.json()


async def test_request_chunks_resume_from_the_platform_offset_and_are_sha_checked(client, app, admin, token, tmp_path):
    ecology, police = await token("ecology"), await token("police")
    status, err = await _request(client, ecology)
    assert status == 404 and err["error"]["code"] == "gate_not_linked"  # no site runs the gate yet
    site, adapter = await _linked(client, app, admin, tmp_path)
    try:
        status, req = await _request(client, ecology)
        assert status == 201 and req["state"] == "pending" and req["site_id"] == site.site_id, req
        # It travels down to the site (its own requests only).
        down = await adapter.downlink({}, 0)
        assert [r["id"] for r in down["streams"]["video"]["requests"]] == [req["id"]]
        data = os.urandom(3 * 1024 * 1024 + 123)
        await client.put("/api/v1/gates/g-other", headers=admin, json={"name": "别家门", "zone_id": "city"})
        counted = await adapter.send_records({"video_segments": [_segment(41, data), {**_segment(40, data),
                                                                                      "gate_id": "g-other"}]})
        assert (counted["video_segments"], counted["video_segments_refused"]) == (1, 1)  # not this site's gate
        half = len(data) // 2
        first = await adapter.put_video_chunk(41, 0, data[:half], req["id"])
        assert first == {**first, "received": half, "stored": False}
        # The answer was "lost": the site sends the same chunk again and is told where the platform stands.
        with pytest.raises(Refused) as lost:
            await adapter.put_video_chunk(41, 0, data[:half])
        assert lost.value.code == "offset_mismatch" and lost.value.detail["received"] == half
        assert (await adapter.video_offset(41))["received"] == half
        resp = await client.get(f"/api/v1/video-requests/{req['id']}", headers=ecology)
        shown = await resp.json()
        assert shown["state"] == "uploading" and shown["segments"][0]["received"] == half, shown
        done = await adapter.put_video_chunk(41, half, data[half:], req["id"])
        assert done["stored"] is True and done["sha256"] == hashlib.sha256(data).hexdigest()
        report = await adapter.report_video(req["id"], {"segments": [{"segment_id": 41, "state": "stored"}]})
        assert report["state"] == "done"
        resp = await client.get(f"/api/v1/video-requests/{req['id']}/segments/41/video", headers=ecology)
        assert resp.status == 200 and await resp.read() == data
        key = await app[app_keys.POOL].fetchval("SELECT storage_key FROM link_video_index WHERE segment_id = 41")
        assert key.startswith(f"video/{GATE}/") and "segment41" in key  # a key the platform made
        # Roles: the police read no video; another enterprise does not even see the request; the owner does.
        resp = await client.get(f"/api/v1/video-requests/{req['id']}", headers=police)
        assert resp.status == 403
        await client.put("/api/v1/enterprises/e-other", headers=admin, json={"name": "乙企业", "industry": "steel"})
        other = await token("enterprise", enterprise_id="e-other")
        resp = await client.get(f"/api/v1/video-requests/{req['id']}", headers=other)
        assert resp.status == 404
        resp = await client.get("/api/v1/video-requests", headers=other)
        assert (await resp.json())["requests"] == []
        owner = await token("enterprise", enterprise_id="e-a")
        resp = await client.get(f"/api/v1/video-requests/{req['id']}/segments/41/video", headers=owner)
        assert resp.status == 200
        resp = await client.post("/api/v1/video-requests", headers=owner, json={"gate_id": GATE, "reason": "看看"})
        assert resp.status == 403  # an enterprise watches; it does not ask for video
        # Closed: the request no longer goes down.
        down = await adapter.downlink({}, 0)
        assert down["streams"]["video"]["requests"] == []
    finally:
        await adapter.close()


async def test_a_segment_that_does_not_match_its_index_fails_the_request(client, app, admin, token, tmp_path):
    ecology = await token("ecology")
    _, adapter = await _linked(client, app, admin, tmp_path)
    try:
        _, req = await _request(client, ecology)
        data = os.urandom(100_000)
        await adapter.send_records({"video_segments": [_segment(42, data)]})
        changed = bytes([data[0] ^ 1]) + data[1:]  # the file at the site changed after it was indexed
        with pytest.raises(Refused) as refused:
            await adapter.put_video_chunk(42, 0, changed, req["id"])
        assert refused.value.code == "sha256_mismatch"
        resp = await client.get(f"/api/v1/video-requests/{req['id']}", headers=ecology)
        shown = await resp.json()
        assert shown["state"] == "failed" and "sha256" in shown["state_reason"]
        assert shown["segments"][0]["state"] == "pending" and shown["segments"][0]["received"] == 0
        # Past the segment's end is refused, and nothing past it is kept.
        with pytest.raises(Refused) as long:
            await adapter.put_video_chunk(42, 0, data + b"x")
        assert long.value.code == "chunk_too_large"
        assert (await adapter.video_offset(42))["received"] == 0
    finally:
        await adapter.close()


async def test_site_uploader_reports_stored_and_gone_segments(client, app, admin, token, tmp_path):
    """The site's own uploader, reading its store at offsets in small chunks: one segment still there, one that
    retention deleted."""
    ecology = await token("ecology")
    _, adapter = await _linked(client, app, admin, tmp_path)
    pool = app[app_keys.POOL]
    store = LocalStore(tmp_path / "site-media")
    data = os.urandom(700_000)
    key = media_key("video", GATE, T0, "segment.mp4")
    await store.put(key, data)
    # The "site's" index: a real video_segments row (this test's one database plays both tiers' tables).
    rows = []
    for start, gone in ((T0, False), (T0 + timedelta(minutes=10), True)):
        rows.append(await pool.fetchrow(
            """INSERT INTO video_segments (gate_id, started_at, ended_at, storage_key, status, fps, width, height,
                                           frames, bytes, sha256, deleted_at)
               VALUES ($1, $2, $3, $4, 'closed', 5, 320, 240, 3000, $5, $6, $7) RETURNING *""",
            GATE, start, start + timedelta(minutes=10), key if not gone else key + ".old", len(data),
            hashlib.sha256(data).hexdigest(), datetime.now(timezone.utc) if gone else None))
    try:
        _, req = await _request(client, ecology, **{"from": (T0 + timedelta(minutes=5)).isoformat(),
                                                    "to": (T0 + timedelta(minutes=15)).isoformat()})
        uploader = ClipUploader(pool, adapter, store, chunk=64 * 1024)
        uploader.offer((await adapter.downlink({}, 0))["streams"]["video"]["requests"])
        await uploader.fulfil(uploader.requests[req["id"]])
        resp = await client.get(f"/api/v1/video-requests/{req['id']}", headers=ecology)
        shown = await resp.json()
        assert shown["state"] == "gone" and "保存期限" in shown["state_reason"], shown
        states = {s["segment_id"]: s["state"] for s in shown["segments"]}
        assert states == {rows[0]["id"]: "stored", rows[1]["id"]: "gone"}
        resp = await client.get(shown["segments"][0]["video"], headers=ecology)
        assert await resp.read() == data
        assert req["id"] not in uploader.requests
    finally:
        await adapter.close()


async def test_document_photo_goes_up_under_a_platform_key(client, app, admin, token, tmp_path):
    _, adapter = await _linked(client, app, admin, tmp_path)
    photo = b"\xff\xd8\xff\xe0" + os.urandom(5000)
    meta = {"id": 7, "plate": "晋LD1234", "sha256": hashlib.sha256(photo).hexdigest(),
            "uploaded_at": datetime.now(timezone.utc).isoformat(), "uploaded_by": "门卫 王", "bytes": len(photo)}
    try:
        with pytest.raises(Refused) as early:
            await adapter.put_document(meta, photo, "image/jpeg")
        assert early.value.code == "unknown_vehicle"  # the vehicle's record goes up first
        resp = await client.put("/api/v1/vehicles/晋LD1234", headers=admin, json={
            "plate_color": "yellow", "fuel_type": "diesel", "vehicle_class": "heavy_truck", "emission_stage": 6})
        assert resp.status in (200, 201), await resp.text()
        with pytest.raises(Refused) as bad:
            await adapter.put_document({**meta, "sha256": "0" * 64}, photo, "image/jpeg")
        assert bad.value.code == "sha256_mismatch"
        first = await adapter.put_document(meta, photo, "image/jpeg")
        again = await adapter.put_document(meta, photo, "image/jpeg")
        assert first["duplicate"] is False and again == {"document_id": first["document_id"], "duplicate": True}
        row = await app[app_keys.POOL].fetchrow("SELECT * FROM vehicle_documents WHERE id = $1", first["document_id"])
        assert row["storage_key"].startswith("documents/site-") and row["origin_document_id"] == 7
        ecology, police = await token("ecology"), await token("police")
        resp = await client.get("/api/v1/console/vehicles/晋LD1234/document", headers=ecology)
        assert resp.status == 200 and await resp.read() == photo
        resp = await client.get("/api/v1/console/vehicles/晋LD1234/document", headers=police)
        assert resp.status == 403
    finally:
        await adapter.close()


async def test_two_uploads_of_one_segment_at_once_are_not_interleaved(client, app, admin, token, tmp_path):
    import asyncio

    ecology = await token("ecology")
    site, adapter = await _linked(client, app, admin, tmp_path)
    try:
        _, req = await _request(client, ecology)
        data = os.urandom(600_000)
        await adapter.send_records({"video_segments": [_segment(43, data)]})
        release = asyncio.Event()

        async def slow():
            yield data[:300_000]
            await release.wait()  # the first upload is still streaming its body

        headers = {**site.headers, "Content-Type": "application/octet-stream"}
        first = asyncio.create_task(client.put("/api/v1/link/video/43", params={"offset": "0"}, headers=headers,
                                               data=slow()))
        part = app[app_keys.SETTINGS].data_dir / "link" / "incoming" / str(site.site_id) / "43.part"
        await until(lambda: part.exists() and part.stat().st_size, what="the first upload's part file written")
        with pytest.raises(Refused) as busy:
            await adapter.put_video_chunk(43, 0, data[:1000])
        assert busy.value.code == "upload_in_progress"
        release.set()
        resp = await first
        assert resp.status == 200 and (await resp.json())["received"] == 300_000
        done = await adapter.put_video_chunk(43, 300_000, data[300_000:])
        assert done["stored"] is True
    finally:
        await adapter.close()
