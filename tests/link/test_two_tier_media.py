"""Video clips, document photos and a resolved break across two real service processes (a site and a platform,
each with its own PostgreSQL and media store)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import pytest

from tests.link.test_two_tier import _rewrite
from tests.link.two_tier import TwoTier, passages, post_passages, running, wait_for

E = "e-xf-steel"
GATES = ["g-m-1", "g-m-2", "g-m-3", "g-m-4", "g-m-5"]
T0 = (datetime.now(timezone.utc) - timedelta(hours=3)).replace(microsecond=0)


@pytest.fixture(scope="module")
def tiers():
    with running(E, GATES, backoff=2) as t:
        yield t


def _mp4(path: Path, frames: int = 60) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (320, 240))
    for i in range(frames):
        image = np.full((240, 320, 3), (i * 4) % 255, np.uint8)
        cv2.putText(image, f"{i:03d}", (100, 130), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        writer.write(image)
    writer.release()


async def _segment(t: TwoTier, gate: str, start: datetime, data: bytes | None = None, *,
                   deleted: bool = False, seconds: int = 12) -> tuple[int, bytes]:
    """A closed segment of the site's video, as its recorder leaves it: the file in the site's media store and
    its row in the site's own video_segments."""
    key = f"video/{gate}/{start:%Y/%m/%d}/segment-{secrets.token_hex(8)}.mp4"
    path = t.site.data_dir / "media" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is None:
        await asyncio.to_thread(_mp4, path, seconds * 5)
        data = path.read_bytes()
    else:
        path.write_bytes(data)
    rows = await t.site.sql(
        """INSERT INTO video_segments (gate_id, started_at, ended_at, storage_key, status, fps, width, height, frames,
                                       bytes, sha256, deleted_at)
           VALUES ($1, $2, $3, $4, 'closed', 5, 320, 240, $5, $6, $7, $8) RETURNING id""",
        gate, start, start + timedelta(seconds=seconds), key, seconds * 5, len(data), hashlib.sha256(data).hexdigest(),
        datetime.now(timezone.utc) if deleted else None)
    if deleted:
        path.unlink()
    return rows[0]["id"], data


async def _call(method: str, url: str, headers: dict, **kw) -> tuple[int, object]:
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.request(method, url, **kw) as r:
            body = await r.read()
            if r.content_type == "application/json":
                import json

                return r.status, json.loads(body)
            return r.status, body


async def _ecology(t: TwoTier) -> dict[str, str]:
    return {"Authorization": "Bearer " + await asyncio.to_thread(t.platform.cli, "token", "create", "--role", "ecology")}


async def _request_state(t: TwoTier, headers: dict, request_id: int, states: tuple[str, ...]) -> dict | None:
    status, body = await _call("GET", f"{t.platform.url}/api/v1/video-requests/{request_id}", headers)
    assert status == 200, body
    return body if body["state"] in states else None


async def test_clip_requested_from_a_passage_is_uploaded_and_served(tiers):
    gate = GATES[0]
    seg_id, data = await _segment(tiers, gate, T0)
    [passage] = await post_passages(tiers.site.url, tiers.s_admin, gate, ["v-1"])
    status, moved = await _call("POST", f"{tiers.site.url}/api/v1/gates/{gate}/passages", tiers.s_admin,
                                json={"plate": "晋LV0001", "direction": "in", "client_ref": "v-2",
                                      "at": (T0 + timedelta(seconds=5)).isoformat()})
    assert status == 201, moved
    assert await wait_for(lambda: _uploaded(tiers, gate, 2), 60)
    ecology = await _ecology(tiers)
    clip_url = f"{tiers.platform.url}/api/v1/passages/{moved['passage_id']}/clip"
    status, err = await _call("GET", clip_url, ecology)
    assert status == 404 and err["error"]["code"] == "video_at_site", err  # the platform never calls the site
    status, req = await _call("POST", f"{tiers.platform.url}/api/v1/video-requests", ecology,
                              json={"passage_id": moved["passage_id"], "before": 3, "after": 3, "reason": "核查该车进厂"})
    assert status == 201 and req["state"] == "pending", req
    asked = time.monotonic()
    # Down the long-poll like the blacklist: the site takes it up within the downlink's 5 s.
    taken = await wait_for(lambda: _request_state(tiers, ecology, req["id"], ("uploading", "done", "failed", "gone")),
                           5, step=0.05)
    took = time.monotonic() - asked
    assert taken, "the site did not take the request up within 5 s"
    done = await wait_for(lambda: _request_state(tiers, ecology, req["id"], ("done", "failed", "gone")), 30)
    assert done and done["state"] == "done", done
    print(f"video request: taken up by the site in {took:.2f} s, done in {time.monotonic() - asked:.2f} s "
          f"({len(data)} bytes)")
    assert [s["segment_id"] for s in done["segments"]] == [seg_id] and done["segments"][0]["state"] == "stored"
    status, whole = await _call("GET", clip_url, ecology, params={"whole": "true"})
    assert status == 200 and whole == data
    status, cut = await _call("GET", clip_url, ecology, params={"before": "2", "after": "2"})
    assert status == 200 and cut[4:8] == b"ftyp" and 0 < len(cut) < len(data)
    police = {"Authorization": "Bearer " + await asyncio.to_thread(tiers.platform.cli, "token", "create", "--role",
                                                                   "police")}
    assert (await _call("GET", clip_url, police))[0] == 403
    assert (await _call("GET", f"{tiers.platform.url}/api/v1/video-requests", police))[0] == 403
    assert passage["passage_id"]


async def _uploaded(t: TwoTier, gate: str, n: int) -> bool:
    return len(await passages(t.platform.url, t.p_admin, gate)) == n


async def test_hold_at_the_site_copies_the_segment_to_the_platform(tiers):
    gate = GATES[1]
    seg_id, data = await _segment(tiers, gate, T0 + timedelta(minutes=20))
    status, held = await _call("POST", f"{tiers.site.url}/api/v1/video/segments/{seg_id}/hold", tiers.s_admin,
                               json={"reason": "企业内部调查:疑似超载", "case_ref": "XF-2026-17"})
    assert status == 200 and held["legal_hold"] is True, held
    ecology = await _ecology(tiers)

    async def hold_done():
        status, body = await _call("GET", f"{tiers.platform.url}/api/v1/video-requests", ecology,
                                   params={"gate_id": gate})
        reqs = [r for r in body["requests"] if r["source"] == "site_hold"]
        return reqs[0] if reqs and reqs[0]["state"] == "done" else None

    req = await wait_for(hold_done, 60)
    assert req and "疑似超载" in req["reason"], req
    status, video = await _call("GET", f"{tiers.platform.url}/api/v1/video-requests/{req['id']}/segments/{seg_id}/video",
                                ecology)
    assert status == 200 and video == data


async def test_segments_retention_deleted_at_the_site_are_reported_gone(tiers):
    gate = GATES[2]
    await post_passages(tiers.site.url, tiers.s_admin, gate, ["g-1"])  # the gate's chain: the platform knows it
    assert await wait_for(lambda: _uploaded(tiers, gate, 1), 60)
    await _segment(tiers, gate, T0 + timedelta(minutes=40), deleted=True)
    ecology = await _ecology(tiers)
    start = T0 + timedelta(minutes=40)
    status, req = await _call("POST", f"{tiers.platform.url}/api/v1/video-requests", ecology, json={
        "gate_id": gate, "from": start.isoformat(), "to": (start + timedelta(seconds=10)).isoformat(),
        "reason": "补查"})
    assert status == 201, req
    done = await wait_for(lambda: _request_state(tiers, ecology, req["id"], ("done", "failed", "gone")), 30)
    assert done and done["state"] == "gone" and done["segments"][0]["state"] == "gone", done
    # A period with no video at all fails with that reason.
    empty = T0 + timedelta(minutes=70)
    status, req = await _call("POST", f"{tiers.platform.url}/api/v1/video-requests", ecology, json={
        "gate_id": gate, "from": empty.isoformat(), "to": (empty + timedelta(seconds=10)).isoformat(), "reason": "补查"})
    done = await wait_for(lambda: _request_state(tiers, ecology, req["id"], ("done", "failed", "gone")), 30)
    assert done and done["state"] == "failed" and "没有该时段" in done["state_reason"], done


async def test_platform_killed_mid_upload_resumes_where_it_stopped(tiers):
    gate = GATES[3]
    await post_passages(tiers.site.url, tiers.s_admin, gate, ["k-1"])
    assert await wait_for(lambda: _uploaded(tiers, gate, 1), 60)
    start = T0 + timedelta(minutes=90)
    seg_id, data = await _segment(tiers, gate, start, os.urandom(48 * 1024 * 1024))
    ecology = await _ecology(tiers)
    status, req = await _call("POST", f"{tiers.platform.url}/api/v1/video-requests", ecology, json={
        "gate_id": gate, "from": start.isoformat(), "to": (start + timedelta(seconds=5)).isoformat(), "reason": "调取"})
    assert status == 201
    site_id = req["site_id"]
    part = tiers.platform.data_dir / "link" / "incoming" / str(site_id) / f"{seg_id}.part"

    async def partway():
        size = part.stat().st_size if part.exists() else 0
        return size if 0 < size < len(data) else None

    seen = await wait_for(partway, 60, step=0.01)
    tiers.platform.kill9()
    assert seen, "the upload was not caught in progress"
    kept = part.stat().st_size
    assert 0 < kept < len(data)  # what arrived before the kill is still on the platform's disk
    await asyncio.to_thread(tiers.platform.start)
    done = await wait_for(lambda: _request_state(tiers, ecology, req["id"], ("done", "failed", "gone")), 120)
    assert done and done["state"] == "done", done
    status, video = await _call("GET", f"{tiers.platform.url}/api/v1/video-requests/{req['id']}/segments/{seg_id}/video",
                                ecology)
    assert status == 200 and hashlib.sha256(video).hexdigest() == hashlib.sha256(data).hexdigest()


async def test_document_photo_registered_at_the_site_is_served_by_the_platform(tiers):
    plate = "晋LP6688"
    status, body = await _call("PUT", f"{tiers.site.url}/api/v1/vehicles/{plate}", tiers.s_admin, json={
        "plate_color": "yellow", "fuel_type": "diesel", "vehicle_class": "heavy_truck", "emission_stage": 6})
    assert status in (200, 201), body
    photo = cv2.imencode(".jpg", np.full((120, 160, 3), 200, np.uint8))[1].tobytes()
    status, doc = await _call("POST", f"{tiers.site.url}/api/v1/console/vehicles/{plate}/document",
                              {**tiers.s_admin, "Content-Type": "image/jpeg"}, data=photo)
    assert status == 201, doc
    ecology = await _ecology(tiers)

    async def at_platform():
        status, body = await _call("GET", f"{tiers.platform.url}/api/v1/console/vehicles/{plate}/document", ecology)
        return body if status == 200 else None

    assert await wait_for(at_platform, 60) == photo
    rows = await tiers.platform.sql("SELECT storage_key FROM vehicle_documents WHERE plate = $1", plate)
    assert len(rows) == 1 and rows[0]["storage_key"] != doc["document_ref"]  # the platform's own key
    owner = await tiers.platform.sql("SELECT owner_enterprise_id FROM vehicles WHERE plate = $1", plate)
    assert owner[0]["owner_enterprise_id"] == E  # registered at E's site: E's vehicle at the platform too


async def test_broken_chain_resolved_at_the_platform_and_the_site_goes_on(tiers):
    gate = GATES[4]
    await post_passages(tiers.site.url, tiers.s_admin, gate, [f"r-{i}" for i in range(8)])
    assert await wait_for(lambda: _uploaded(tiers, gate, 8), 60)
    await _rewrite(tiers, gate, keep=5, rewrite_seq=None)  # rows 6-8 cut at the site
    await post_passages(tiers.site.url, tiers.s_admin, gate, ["r-new-1", "r-new-2"], plate="晋LR{n:04d}")

    async def broken():
        status, body = await _call("GET", f"{tiers.platform.url}/api/v1/sites", tiers.p_admin)
        for g in body["sites"][0]["gates"]:
            if g["gate_id"] == gate and g["chain"] == "broken":
                return body["sites"][0]
        return None

    site = await wait_for(broken, 60)
    assert site
    view_url = f"{tiers.platform.url}/api/v1/sites/{site['site_id']}/gates/{gate}"

    async def quarantined():
        status, view = await _call("GET", view_url + "/chain", tiers.p_admin)
        return view if sum(len(r["site"]) for r in view["rows"]) == 2 else None

    view = await wait_for(quarantined, 30)
    assert view and view["first_bad_seq"] == 6 and view["rows"][0]["platform"] and view["rows"][0]["site"]
    status, res = await _call("POST", view_url + "/resolve", tiers.p_admin,
                              json={"reason": "企业删除了第6至8条,原记录保留;接受之后的新记录"})
    assert status == 200 and res["merged"] == 2, res
    await post_passages(tiers.site.url, tiers.s_admin, gate, ["r-new-3"], plate="晋LS{n:04d}")
    assert await wait_for(lambda: _uploaded(tiers, gate, 11), 60)  # 8 first reported + 3 new
    out = await asyncio.to_thread(tiers.platform.cli, "ledger", "verify")
    assert "intact" in out or "ok" in out.lower(), out


async def test_hold_released_at_the_site_travels_up_and_the_copy_falls_to_retention(tiers):
    gate = GATES[1]
    start = (datetime.now(timezone.utc) - timedelta(days=200)).replace(microsecond=0)  # past 183 days
    seg_id, data = await _segment(tiers, gate, start)
    hold_url = f"{tiers.site.url}/api/v1/video/segments/{seg_id}"
    status, held = await _call("POST", f"{hold_url}/hold", tiers.s_admin, json={"reason": "企业内部调查:旧案复查"})
    assert status == 200, held

    async def platform_row(**want):
        rows = await tiers.platform.sql(
            """SELECT site_id, storage_key, held, hold_released_at, deleted_at, platform_hold FROM link_video_index
               WHERE gate_id = $1 AND segment_id = $2""", gate, seg_id)
        row = dict(rows[0]) if rows else None
        return row if row and all(row[k] == v if not callable(v) else v(row[k]) for k, v in want.items()) else None

    copy = await wait_for(lambda: platform_row(held=True, storage_key=lambda k: k is not None), 60)
    assert copy, await platform_row()
    site_id, key = copy["site_id"], copy["storage_key"]
    stored_file = tiers.platform.data_dir / "media" / key
    assert stored_file.read_bytes() == data

    async def retention() -> dict:
        out = await asyncio.to_thread(tiers.platform.cli, "retention", "run")
        import json

        return json.loads(out)["uploaded_clips"]

    kept = await retention()
    assert kept["clips_deleted"] == 0 and kept["clips_held_kept"] >= 1, kept
    assert stored_file.exists()

    # Released at the site: the release travels up; the copy stays until retention takes it, not at once.
    status, released = await _call("POST", f"{hold_url}/release", tiers.s_admin, json={"reason": "调查结束"})
    assert status == 200 and released["legal_hold"] is False, released
    after = await wait_for(lambda: platform_row(held=False), 60)
    assert after and after["hold_released_at"] is not None and after["storage_key"] == key, after
    assert stored_file.exists()

    # The bureau's own hold on the copy keeps it whatever the site did.
    ecology = await _ecology(tiers)
    platform_hold = f"{tiers.platform.url}/api/v1/sites/{site_id}/video/{seg_id}"
    status, body = await _call("POST", f"{platform_hold}/hold", ecology, json={"reason": "生态环境局立案", "case_ref": "LF-9"})
    assert status == 200 and body["platform_hold"] is True, body
    kept = await retention()
    assert kept["clips_deleted"] == 0 and stored_file.exists(), kept

    status, body = await _call("POST", f"{platform_hold}/release", ecology, json={"reason": "结案"})
    assert status == 200, body
    gone = await retention()
    assert gone["clips_deleted"] == 1, gone
    assert not stored_file.exists()
    row = await platform_row()
    assert row["storage_key"] is None and row["deleted_at"] is not None
    status, body = await _call("GET", f"{tiers.platform.url}/api/v1/video-requests", ecology, params={"gate_id": gate})
    [req] = [r for r in body["requests"] if r["source"] == "site_hold" and "旧案复查" in r["reason"]]
    status, err = await _call("GET", f"{tiers.platform.url}/api/v1/video-requests/{req['id']}/segments/{seg_id}/video",
                              ecology)
    assert status == 410 and err["error"]["code"] == "video_expired", err

    # Held again at the site after the copy expired: the platform asks for it again and holds a copy again.
    status, held = await _call("POST", f"{hold_url}/hold", tiers.s_admin, json={"reason": "新线索:再次保全"})
    assert status == 200, held
    again = await wait_for(lambda: platform_row(held=True, storage_key=lambda k: k is not None), 60)
    assert again and again["deleted_at"] is None, await platform_row()
    assert (tiers.platform.data_dir / "media" / again["storage_key"]).read_bytes() == data
    status, body = await _call("GET", f"{tiers.platform.url}/api/v1/video-requests/{req['id']}", ecology)
    assert body["state"] in ("uploading", "done") and "再次保全" in body["reason"], body
