"""Clip download, the segment index and legal holds over HTTP, with a real recorded segment."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import datetime, timedelta, timezone

import cv2
import numpy as np
import pytest

from gate_service import keys
from gate_service.ledger import store as ledger

T0 = datetime(2025, 1, 6, 2, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
async def world(client, admin):
    async def put(path, body):
        resp = await client.put(path, json=body, headers=admin)
        assert resp.status in (200, 201), await resp.text()

    for ent in ("e1", "e2"):
        await put(f"/api/v1/enterprises/{ent}", {"name": f"企业{ent}", "industry": "steel", "county": "襄汾县",
                                                 "zone_id": "xiangfen", "retrofit_completed_on": None, "grade": "A"})
    await put("/api/v1/gates/g1", {"name": "1号门", "enterprise_id": "e1", "zone_id": "xiangfen"})
    await put("/api/v1/gates/g2", {"name": "2号门", "enterprise_id": "e2", "zone_id": "xiangfen"})
    return admin


async def record(app, frames, gate="g1", seconds=10.0, start=T0, close=True):
    recorder = app[keys.VIDEO_RECORDER]
    first = None
    for i in range(int(seconds * 5)):
        seg, _ = await recorder.add_frame(gate, start + timedelta(seconds=i / 5), frames[i % len(frames)])
        first = first or seg
        await asyncio.sleep(0.003)  # frames arrive over time; a burst beyond the queue would be left out
    if close:
        await recorder.close_gate(gate)
    return first


async def passage(app, gate, at, segment_id, offset_ms, enterprise="e1"):
    pool = app[keys.POOL]
    async with pool.acquire() as conn, conn.transaction():
        row = await ledger.append(conn, {
            "at": at, "gate_id": gate, "enterprise_id": enterprise, "zone_id": "xiangfen", "direction": "in",
            "plate": "晋LA1234", "source": "camera", "registered": False, "decision": "allow",
            "video_segment_id": segment_id, "video_offset_ms": offset_ms, "reasons": [], "rules": [],
            "blacklisted": False, "clean": False,
        })
    return str(row["id"])


async def test_clip_cut_around_the_passage_and_whole_segment(client, app, world, frames, token, tmp_path):
    seg = await record(app, frames)
    pid = await passage(app, "g1", T0 + timedelta(seconds=5), seg, 5000)
    ecology = await token("ecology")
    resp = await client.get(f"/api/v1/passages/{pid}/clip?before=1&after=2", headers=ecology)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "video/mp4"
    assert resp.headers["X-Segment-Id"] == str(seg)
    assert resp.headers["X-Clip-Starts-At-Ms"] == "4000" and resp.headers["X-Clip-Offset-Ms"] == "1000"
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(await resp.read())
    cap = cv2.VideoCapture(str(clip))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 15  # 3 s at 5 fps

    whole = await client.get(f"/api/v1/passages/{pid}/clip?whole=true", headers=world)
    assert whole.status == 200
    body = await whole.read()
    row = await app[keys.POOL].fetchrow("SELECT bytes, sha256 FROM video_segments WHERE id = $1", seg)
    assert len(body) == row["bytes"] and hashlib.sha256(body).hexdigest() == row["sha256"]
    assert whole.headers["X-Segment-Sha256"] == row["sha256"]
    # Evidence access is audited.
    assert await app[keys.POOL].fetchval("SELECT count(*) FROM audit_log WHERE action = 'video.clip'") == 2


async def test_clip_access_by_enterprise_and_roles(client, app, world, frames, token):
    seg = await record(app, frames, seconds=2)
    pid = await passage(app, "g1", T0, seg, 0)
    own = await token("enterprise", enterprise_id="e1")
    other = await token("enterprise", enterprise_id="e2")
    assert (await client.get(f"/api/v1/passages/{pid}/clip", headers=own)).status == 200
    denied = await client.get(f"/api/v1/passages/{pid}/clip", headers=other)
    assert denied.status == 403 and (await denied.json())["error"]["code"] == "forbidden_enterprise"
    police = await token("police")
    assert (await client.get(f"/api/v1/passages/{pid}/clip", headers=police)).status == 403
    assert (await client.get(f"/api/v1/passages/{pid}/clip")).status == 401
    missing = await client.get("/api/v1/passages/00000000-0000-0000-0000-000000000000/clip", headers=world)
    assert missing.status == 404
    novideo = await passage(app, "g1", T0 - timedelta(hours=1), None, None)  # no segment covers that moment
    resp = await client.get(f"/api/v1/passages/{novideo}/clip", headers=world)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "no_video"
    # Segments of the other enterprise's gates are not listed to e2... and e1 sees only its own.
    await record(app, frames, gate="g2", seconds=1)
    listing = await (await client.get("/api/v1/video/segments", headers=own)).json()
    assert {s["gate_id"] for s in listing["segments"]} == {"g1"}
    listing = await (await client.get("/api/v1/video/segments", headers=world)).json()
    assert {s["gate_id"] for s in listing["segments"]} == {"g1", "g2"}


async def test_clip_of_a_segment_still_recording_or_deleted(client, app, world, frames):
    seg = await record(app, frames, seconds=1, close=False)
    pid = await passage(app, "g1", T0, seg, 0)
    resp = await client.get(f"/api/v1/passages/{pid}/clip", headers=world)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "video_recording"
    assert int(resp.headers["Retry-After"]) >= 1
    await app[keys.VIDEO_RECORDER].close_gate("g1")
    await app[keys.POOL].execute("UPDATE video_segments SET deleted_at = now() WHERE id = $1", seg)
    resp = await client.get(f"/api/v1/passages/{pid}/clip", headers=world)
    assert resp.status == 410 and (await resp.json())["error"]["code"] == "video_expired"


async def test_clip_of_a_passage_decided_while_video_had_no_row_is_found_by_gate_and_time(client, app, world, frames,
                                                                                         database_url):
    from gate_service.db.connect import create_pool

    recorder = app[keys.VIDEO_RECORDER]
    working = recorder.pool
    # The recorder's database unusable (a closed pool: every call fails inside asyncpg, as when PostgreSQL is down).
    dead = await create_pool(database_url, min_size=0, max_size=1)
    await dead.close()
    recorder.pool = dead
    try:
        assert await record(app, frames, seconds=4, close=False) is None  # recorded provisionally: no id
        pid = await passage(app, "g1", T0 + timedelta(seconds=2), None, None)
        # Saved on this host, not indexed yet: "later", not "no video".
        resp = await client.get(f"/api/v1/passages/{pid}/clip", headers=world)
        assert resp.status == 409 and (await resp.json())["error"]["code"] == "video_recording"
        assert int(resp.headers["Retry-After"]) >= 1
        closed = await recorder.close_gate("g1")
        assert closed is not None and closed.id is None and closed.frames == 20 and recorder.pending_index == 1
        assert (await client.get(f"/api/v1/passages/{pid}/clip", headers=world)).status == 409
    finally:
        recorder.pool = working
    assert await recorder.index_pending() == 1
    row = await app[keys.POOL].fetchrow("SELECT * FROM video_segments WHERE gate_id = 'g1'")
    assert row["started_at"] == T0 and row["status"] == "closed" and row["frames"] == 20

    resp = await client.get(f"/api/v1/passages/{pid}/clip?before=1&after=1", headers=world)
    assert resp.status == 200, await resp.text()
    assert resp.headers["X-Segment-Id"] == str(row["id"]) and resp.headers["X-Segment-Found-By"] == "gate_time"
    assert resp.headers["X-Clip-Starts-At-Ms"] == "1000" and resp.headers["X-Clip-Offset-Ms"] == "1000"
    whole = await client.get(f"/api/v1/passages/{pid}/clip?whole=true", headers=world)
    body = await whole.read()
    assert hashlib.sha256(body).hexdigest() == row["sha256"] and len(body) == row["bytes"]
    # A passage with its segment id is found by it, as before.
    direct = await passage(app, "g1", T0 + timedelta(seconds=1), row["id"], 1000)
    resp = await client.get(f"/api/v1/passages/{direct}/clip?whole=true", headers=world)
    assert resp.status == 200 and resp.headers["X-Segment-Found-By"] == "segment_id"
    # After the segment's end there is no video.
    late = await passage(app, "g1", T0 + timedelta(seconds=4), None, None)
    resp = await client.get(f"/api/v1/passages/{late}/clip", headers=world)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "no_video"


async def test_segment_listing_filters_and_hold(client, app, world, frames, token):
    first = await record(app, frames, seconds=1)
    second = await record(app, frames, seconds=1, start=T0 + timedelta(hours=1))
    resp = await client.get("/api/v1/video/segments?gate_id=g1&from=2025-01-06T02:30:00Z&to=2025-01-06T04:00:00Z",
                            headers=world)
    listing = await resp.json()
    assert [s["id"] for s in listing["segments"]] == [second]
    seg = listing["segments"][0]
    assert seg["available"] and seg["frames"] == 5 and len(seg["sha256"]) == 64 and "storage_key" not in seg
    # A local day covers the whole day in Asia/Shanghai (T0 is 10:00 there).
    day = await (await client.get("/api/v1/video/segments?from=2025-01-06&to=2025-01-06", headers=world)).json()
    assert day["count"] == 2

    ecology = await token("ecology")
    enterprise = await token("enterprise", enterprise_id="e1")
    body = {"reason": "涉嫌篡改OBD案", "case_ref": "临环罚〔2025〕12号"}
    assert (await client.post(f"/api/v1/video/segments/{first}/hold", json=body, headers=enterprise)).status == 403
    resp = await client.post(f"/api/v1/video/segments/{first}/hold", json=body, headers=ecology)
    assert resp.status == 200, await resp.text()
    held = await resp.json()
    assert held["legal_hold"] and held["hold_case_ref"] == body["case_ref"] and held["held_by"] == "test-ecology"
    listing = await (await client.get("/api/v1/video/segments?held=true", headers=world)).json()
    assert [s["id"] for s in listing["segments"]] == [first]
    bad = await client.post(f"/api/v1/video/segments/{first}/hold", json={}, headers=ecology)
    assert bad.status in (400, 422)
    assert (await client.post("/api/v1/video/segments/999999/hold", json=body, headers=ecology)).status == 404
    released = await client.post(f"/api/v1/video/segments/{first}/release", json={"reason": "结案"}, headers=world)
    assert released.status == 200 and not (await released.json())["legal_hold"]
    actions = [r["action"] for r in await app[keys.POOL].fetch("SELECT action FROM audit_log ORDER BY id")]
    assert actions[-2:] == ["video.hold", "video.release"]


async def test_whole_segment_download(client, app, world, frames):
    seg = await record(app, frames, seconds=1)
    resp = await client.get(f"/api/v1/video/segments/{seg}/video", headers=world)
    assert resp.status == 200 and resp.content_type == "video/mp4"
    data = await resp.read()
    assert hashlib.sha256(data).hexdigest() == resp.headers["X-Segment-Sha256"]
    store = app[keys.MEDIA_STORE]
    key = await app[keys.POOL].fetchval("SELECT storage_key FROM video_segments WHERE id = $1", seg)
    await store.delete(key)
    gone = await client.get(f"/api/v1/video/segments/{seg}/video", headers=world)
    assert gone.status == 404 and (await gone.json())["error"]["code"] == "video_missing"


async def test_store_api_for_snapshots(client, app):
    store = app[keys.MEDIA_STORE]
    from gate_service.video.storage import BadKey, media_key

    key = media_key("snapshots", "g1/东门", T0, "p1.jpg")
    assert re.fullmatch(r"snapshots/g1~2f~e4~b8~9c~e9~97~a8/2025/01/06/p1-[0-9a-f]{32}\.jpg", key), key
    jpeg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    blob = await store.put(key, jpeg)
    assert blob.bytes == len(jpeg) and blob.sha256 == hashlib.sha256(jpeg).hexdigest()
    assert await store.exists(key) and await store.size(key) == len(jpeg)
    assert await store.read(key, 2, 3) == jpeg[2:5]
    assert await store.delete(key) and not await store.delete(key)
    assert await store.size(key) is None
    for bad in ("../etc/passwd", "/abs", "a//b", "a/./b", "空格 key"):
        with pytest.raises(BadKey):
            await store.put(bad, b"x")
