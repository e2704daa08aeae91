"""A real RTSP camera (GStreamer's RTSP server) pulled by the service: reads become passages, the stream is
recorded by stream copy, and a camera that dies mid-segment loses no indexed video and is reconnected."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

from gate_service import keys
from gate_service.cameras.manager import CAMERAS
from tests.cameras.conftest import SIZE, ffprobe_stream, packet_sizes
from tests.waiting import poll


async def setup_gate(client, admin, gate="g1"):
    for path, body in (("/api/v1/enterprises/e1", {"name": "企业", "industry": "steel", "county": "襄汾县",
                                                   "zone_id": "xiangfen", "retrofit_completed_on": None,
                                                   "grade": "A"}),
                       (f"/api/v1/gates/{gate}", {"name": "1号门", "enterprise_id": "e1", "zone_id": "xiangfen"})):
        resp = await client.put(path, json=body, headers=admin)
        assert resp.status in (200, 201), await resp.text()


def short_segments(app, seconds: float) -> None:
    # Ten-minute segments in production; a few seconds here so that the test sees several close.
    app[keys.VIDEO_RECORDER].segment_seconds = seconds
    app[CAMERAS].segment_seconds = seconds
    app[CAMERAS].timeout_seconds = 2.0


async def wait_for(predicate, timeout: float, step: float = 0.5):
    return await poll(predicate, timeout, step)


async def camera_state(client, admin, gate="g1"):
    resp = await client.get(f"/api/v1/gates/{gate}/cameras", headers=admin)
    assert resp.status == 200
    return (await resp.json())["cameras"][0]["state"]


async def test_live_stream_reads_become_one_passage_per_vehicle_and_segments_are_stream_copies(
        client, app, token, rtsp_server, h264_video, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    admin = await token("admin")
    await setup_gate(client, admin)
    short_segments(app, 6)
    server = rtsp_server(h264_video)
    url = server.url.replace("rtsp://", "rtsp://admin:s3cret@")  # the server ignores them; we must hide them
    resp = await client.put("/api/v1/gates/g1/cameras/cam1", headers=admin,
                            json={"rtsp_url": url, "roles": ["read", "record"], "read_fps": 5, "vendor": "generic"})
    assert resp.status == 201, await resp.text()
    assert "s3cret" not in await resp.text() and (await resp.json())["rtsp_url"].startswith("rtsp://***@127.0.0.1")
    pool = app[keys.POOL]

    async def passages():
        rows = await pool.fetch("SELECT plate FROM passages WHERE gate_id = 'g1' ORDER BY at")
        return [r["plate"] for r in rows] if len(rows) >= len(h264_video.plates) else None

    # One loop of the lane is 27 s: every vehicle passes once (the tracker's cooldown absorbs the next loop).
    seen = await wait_for(passages, timeout=h264_video.seconds + 60)
    assert seen == list(h264_video.plates), seen
    state = await camera_state(client, admin)
    assert state["connected"] and state["fps"] > 2 and state["last_frame_at"]

    async def closed_segments(n):
        rows = await pool.fetch("SELECT * FROM video_segments WHERE camera_id = 'cam1' AND status <> 'recording' "
                                "ORDER BY started_at")
        return rows if len(rows) >= n else None

    assert await wait_for(lambda: closed_segments(2), timeout=30)

    # The camera dies in the middle of a segment ...
    before = len(await closed_segments(0))
    reconnects_before = (await camera_state(client, admin))["reconnects"]
    await asyncio.sleep(3)
    server.kill()
    assert await wait_for(lambda: closed_segments(before + 1), timeout=30), "the cut-short segment was not indexed"
    state = await wait_for(lambda: _reconnecting(client, admin), timeout=20)
    assert state["errors"] >= 1 and not state["connected"]
    # ... and comes back on the same address: the service reconnects by itself.
    server.start()
    state = await wait_for(lambda: _streaming_again(client, admin), timeout=60)
    assert state["reconnects"] > reconnects_before
    after = len(await closed_segments(0))
    assert await wait_for(lambda: closed_segments(after + 1), timeout=40), "no new segment after reconnecting"

    # The looped test source ends its RTSP session at the end of each loop, so the camera may be between
    # sessions at any one instant: metrics and health must show it connected again within a few seconds.
    async def metrics_connected():
        text = await (await client.get("/metrics", headers=admin)).text()
        return 'cleangate_camera_connected{camera="cam1",gate="g1"} 1' in text

    assert await wait_for(metrics_connected, timeout=30)

    async def health_connected():
        health = await (await client.get("/healthz")).json()
        return health["cameras"] == {"total": 1, "connected": 1}

    assert await wait_for(health_connected, timeout=30)

    rows = await closed_segments(0)
    store = app[keys.MEDIA_STORE]
    source = ffprobe_stream(h264_video.path)
    source_packets = [size for size, key in packet_sizes(h264_video.path) if not key]
    looped = source_packets * 3
    cut_short = [r for r in rows if r["note"]]
    assert cut_short, "the segment the camera died in is indexed, marked as cut short"
    full_length = 0
    for row in rows:
        path = await store.local_path(row["storage_key"])
        data = Path(path).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (row["bytes"], row["sha256"])
        recorded = ffprobe_stream(path)
        # The camera's own stream: same codec, profile, level, size and pixel format; nothing re-encoded.
        assert recorded == source, (recorded, source)
        assert (row["codec"], row["width"], row["height"]) == ("h264", *SIZE)
        assert row["status"] == "closed" and row["ended_at"] > row["started_at"]
        packets = [size for size, key in packet_sizes(path) if not key]
        # A segment that ends where the looped source closes its RTSP session may hold only a few frames.
        assert packets, row["id"]
        full_length += len(packets) >= 10
        run = packets[1:11] or packets
        # Stream copy keeps every packet as the camera sent it: a run of them appears verbatim in the source.
        assert any(looped[i:i + len(run)] == run for i in range(len(source_packets) + 1)), row["id"]
    assert full_length >= 2, "whole segments of the camera's stream were recorded"
    # No password in any log line of the whole run.
    assert not [r for r in caplog.records if "s3cret" in r.getMessage()]
    # The gate's frames were not encoded a second time by the kiosk-frame recorder.
    assert await pool.fetchval("SELECT count(*) FROM video_segments WHERE camera_id IS NULL") == 0
    # The clip of a passage is cut from the camera's segments.
    pid = await pool.fetchval("SELECT id FROM passages WHERE gate_id = 'g1' ORDER BY at LIMIT 1")
    clip = await client.get(f"/api/v1/passages/{pid}/clip?before=2&after=2", headers=admin)
    assert clip.status == 200, await clip.text()
    out = tmp_path / "clip.mp4"
    out.write_bytes(await clip.read())
    assert ffprobe_stream(out)["codec_name"] == "h264"


async def _reconnecting(client, admin):
    state = await camera_state(client, admin)
    return state if state["state"] in ("reconnecting", "connecting") and state["errors"] >= 1 else None


async def _streaming_again(client, admin):
    state = await camera_state(client, admin)
    return state if state["connected"] and state["reconnects"] >= 1 else None


async def test_h265_camera_is_recorded_as_h265(client, app, token, rtsp_server, h265_video):
    admin = await token("admin")
    await setup_gate(client, admin)
    short_segments(app, 4)
    server = rtsp_server(h265_video)
    resp = await client.put("/api/v1/gates/g1/cameras/cam5", headers=admin,
                            json={"rtsp_url": server.url, "roles": ["record"]})
    assert resp.status == 201, await resp.text()
    pool = app[keys.POOL]

    async def closed():
        return await pool.fetchrow("SELECT * FROM video_segments WHERE camera_id = 'cam5' AND status = 'closed' "
                                   "ORDER BY started_at LIMIT 1")

    row = await wait_for(closed, timeout=60)
    assert row is not None
    path = await app[keys.MEDIA_STORE].local_path(row["storage_key"])
    assert ffprobe_stream(path) == ffprobe_stream(h265_video.path)
    assert row["codec"] == "hevc"
    # Removing the camera stops its ffmpeg; what it recorded stays.
    assert (await client.delete("/api/v1/gates/g1/cameras/cam5", headers=admin)).status == 200
    assert app[CAMERAS].sources == {}
    assert await pool.fetchval("SELECT count(*) FROM video_segments WHERE camera_id = 'cam5'") >= 1
