"""The platform's retention of clips sites uploaded, and of abandoned partial uploads, in the nightly retention
job: a real PostgreSQL, real files in the media store and in the staging folder."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone

import asyncpg
import pytest

from gate_service import auth, jobs, keys
from gate_service.link.clip_upload import staging

AS_OF = date(2026, 3, 2)  # video that ended by 2025-08-30 16:00 UTC may go
EDGE = datetime(2025, 8, 30, 16, tzinfo=timezone.utc)
OLD = datetime(2025, 3, 1, tzinfo=timezone.utc)


async def _site(pool, *, seen: datetime | None) -> int:
    site_id, _ = await auth.create_token(pool, "site", name="检查站站点")
    await pool.execute("INSERT INTO link_sites (site_id, last_seen) VALUES ($1, $2)", site_id, seen)
    return site_id


async def _uploaded(pool, store, site_id: int, segment_id: int, ended: datetime, *, stored: bool = True,
                    gate: str = "g-r-1", **cols) -> str | None:
    """An index row of a site's segment, and when ``stored`` the platform's copy in its media store, as
    clip_upload leaves them."""
    data = f"mp4 {site_id}/{segment_id}".encode() * 50
    key = None
    if stored:
        key = f"video/{gate}/{ended:%Y/%m/%d}/site{site_id}-segment{segment_id}.mp4"
        await store.put(key, data)
    await pool.execute(
        """INSERT INTO link_video_index (site_id, segment_id, gate_id, started_at, ended_at, sha256, bytes, storage_key,
                                         stored_at, held, hold_reason, platform_hold, platform_hold_reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $8::text IS NOT NULL THEN now() END, $9, $10, $11, $12)""",
        site_id, segment_id, gate, ended - timedelta(minutes=10), ended, hashlib.sha256(data).hexdigest(), len(data),
        key, cols.get("held", False), cols.get("hold_reason"), cols.get("platform_hold", False),
        cols.get("platform_hold_reason"))
    return key


async def _request(pool, site_id: int, gate: str, start: datetime, end: datetime, state: str = "pending") -> int:
    return await pool.fetchval(
        """INSERT INTO link_video_requests (site_id, gate_id, from_at, to_at, source, reason, requested_by,
                                            requested_role, state)
           VALUES ($1, $2, $3, $4, 'request', '核查', 'test', 'ecology', $5) RETURNING id""",
        site_id, gate, start, end, state)


async def test_uploaded_clips_follow_video_retention_and_holds_keep_them(client, app, token, database_url):
    pool, store = app[keys.POOL], app[keys.MEDIA_STORE]
    site = await _site(pool, seen=datetime.now(timezone.utc))
    keys_ = {
        "old": await _uploaded(pool, store, site, 1, OLD),
        "edge": await _uploaded(pool, store, site, 2, EDGE),
        "young": await _uploaded(pool, store, site, 3, EDGE + timedelta(seconds=1)),
        "site_held": await _uploaded(pool, store, site, 4, OLD, held=True, hold_reason="站点案件"),
        "to_hold_here": await _uploaded(pool, store, site, 5, OLD),
        "released": await _uploaded(pool, store, site, 6, OLD),
    }
    await _uploaded(pool, store, site, 7, OLD, stored=False)  # video still at the site: nothing here to delete
    await pool.execute("UPDATE link_video_index SET hold_released_at = now() WHERE segment_id = 6")
    missing = await _uploaded(pool, store, site, 8, OLD)
    await store.delete(missing)  # a copy whose file was lost: its row still goes, counted as missing
    ecology = await token("ecology")

    # The bureau holds the copy of segment 5; a segment not at the platform cannot be held here.
    r = await client.post(f"/api/v1/sites/{site}/video/5/hold", headers=ecology,
                          json={"reason": "交警移送案件", "case_ref": "LF-2026-3"})
    assert r.status == 200, await r.text()
    assert (await r.json())["platform_hold"] is True
    r = await client.post(f"/api/v1/sites/{site}/video/7/hold", headers=ecology, json={"reason": "交警移送案件"})
    assert r.status == 409 and (await r.json())["error"]["code"] == "video_not_uploaded"
    r = await client.post(f"/api/v1/sites/{site}/video/99/hold", headers=ecology, json={"reason": "交警移送案件"})
    assert r.status == 404
    police = await token("police")
    r = await client.post(f"/api/v1/sites/{site}/video/1/hold", headers=police, json={"reason": "交警移送案件"})
    assert r.status == 403
    # A held copy cannot be marked deleted, whatever code tries it.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute("UPDATE link_video_index SET deleted_at = now() WHERE segment_id = 4")

    req = await _request(pool, site, "g-r-1", OLD - timedelta(minutes=9), OLD - timedelta(minutes=8), "done")

    # `retention plan` says what will go, deleting nothing.
    env = {**os.environ, "DATABASE_URL": database_url, "CLEANGATE_DATA_DIR": str(app[keys.SETTINGS].data_dir)}
    out = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "gate_service", "retention", "plan",
                                                   "--as-of", AS_OF.isoformat(), "--json"],
                                  env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    sizes = {r["segment_id"]: r["bytes"] for r in await pool.fetch("SELECT segment_id, bytes FROM link_video_index")}
    assert json.loads(out.stdout)["uploaded_clips"] == {
        "clips_to_delete": 4, "clip_bytes": sum(sizes[i] for i in (1, 2, 6, 8)), "clips_held_kept": 2}
    assert await store.exists(keys_["old"])

    outcome = await jobs.run_now("retention", app, today=AS_OF)
    assert outcome.ok, outcome.error
    clips = outcome.result.uploaded_clips
    assert clips["clips_deleted"] == 4 and clips["clip_files_missing"] == 1, clips
    assert clips["clips_held_kept"] == 2, clips
    rows = {r["segment_id"]: r for r in await pool.fetch("SELECT * FROM link_video_index WHERE site_id = $1", site)}
    for sid, name in ((1, "old"), (2, "edge"), (6, "released")):
        assert rows[sid]["deleted_at"] is not None and rows[sid]["storage_key"] is None
        assert not await store.exists(keys_[name])
    for sid, name in ((3, "young"), (4, "site_held"), (5, "to_hold_here")):
        assert rows[sid]["deleted_at"] is None and rows[sid]["storage_key"] == keys_[name]
        assert await store.exists(keys_[name])
    assert rows[7]["deleted_at"] is None and rows[8]["deleted_at"] is not None

    # The requester learns the copy went by retention (410, not "still at the site").
    r = await client.get(f"/api/v1/video-requests/{req}", headers=ecology)
    body = await r.json()
    assert {s["segment_id"]: s["state"] for s in body["segments"]} == {
        1: "expired", 4: "stored", 5: "stored", 6: "expired", 7: "pending", 8: "expired"}
    r = await client.get(f"/api/v1/video-requests/{req}/segments/1/video", headers=ecology)
    assert r.status == 410 and (await r.json())["error"]["code"] == "video_expired"

    # Released at the platform, the copy follows normal retention on the next run; the site's hold still keeps 4.
    r = await client.post(f"/api/v1/sites/{site}/video/5/release", headers=ecology, json={"reason": "案件已结"})
    assert r.status == 200 and (await r.json())["platform_hold"] is False
    again = await jobs.run_now("retention", app, today=AS_OF)
    assert again.result.uploaded_clips["clips_deleted"] == 1
    assert not await store.exists(keys_["to_hold_here"]) and await store.exists(keys_["site_held"])
    audit = await pool.fetch("SELECT action FROM audit_log WHERE action LIKE 'video.%uploaded' ORDER BY id")
    assert [a["action"] for a in audit] == ["video.hold_uploaded", "video.release_uploaded"]


def _age(path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


async def test_abandoned_partial_uploads_are_removed_and_their_requests_fail(client, app, token):
    pool, store, settings = app[keys.POOL], app[keys.MEDIA_STORE], app[keys.SETTINGS]
    assert settings.link_staging_max_age_h == 72
    now = datetime.now(timezone.utc)
    gone = await _site(pool, seen=now - timedelta(days=5))  # not heard from for 5 days
    online = await _site(pool, seen=now)
    start = now - timedelta(days=4)
    parts = {}
    for site, sid, hours in ((gone, 1, 80), (gone, 2, 10), (gone, 3, 80), (online, 1, 80), (gone, 4, 80),
                             (online, 9, 80)):
        gate = f"g-s-{sid}"
        await _uploaded(pool, store, site, sid, start + timedelta(minutes=10), stored=False, gate=gate)
        part = staging(settings, site, sid)
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(b"\0" * 1000 * sid)
        _age(part, hours)
        parts[(site, sid)] = part
    stopped = await _request(pool, gone, "g-s-1", start, start + timedelta(minutes=5), "uploading")
    fresh = await _request(pool, gone, "g-s-2", start, start + timedelta(minutes=5), "uploading")
    finished = await _request(pool, gone, "g-s-3", start, start + timedelta(minutes=5), "failed")
    resumable = await _request(pool, online, "g-s-1", start, start + timedelta(minutes=5), "uploading")
    locked = await _request(pool, gone, "g-s-4", start, start + timedelta(minutes=5), "uploading")
    # (online, 9): a staging file with no open request at all, e.g. the site reported the segment gone.
    held = open(parts[(gone, 4)], "ab")  # an upload writing this chunk right now
    fcntl.flock(held.fileno(), fcntl.LOCK_EX)
    try:
        outcome = await jobs.run_now("retention", app, today=AS_OF)
    finally:
        held.close()
    assert outcome.ok, outcome.error
    clips = outcome.result.uploaded_clips
    assert clips["staging_removed"] == 3 and clips["staging_bytes_freed"] == 1000 + 3000 + 9000, clips
    assert clips["staging_kept_resumable"] == 1 and clips["requests_failed"] == 1, clips
    exists = {k: await asyncio.to_thread(p.exists) for k, p in parts.items()}
    assert exists == {(gone, 1): False, (gone, 2): True, (gone, 3): False, (online, 1): True, (gone, 4): True,
                      (online, 9): False}
    states = {r["id"]: r for r in await pool.fetch("SELECT id, state, state_reason FROM link_video_requests")}
    assert states[stopped]["state"] == "failed" and "上传中断" in states[stopped]["state_reason"]
    assert "the partial upload was removed" in states[stopped]["state_reason"]
    assert [states[i]["state"] for i in (fresh, finished, resumable, locked)] == ["uploading", "failed", "uploading",
                                                                                  "uploading"]
    ecology = await token("ecology")
    r = await client.get(f"/api/v1/video-requests/{stopped}", headers=ecology)
    body = await r.json()
    assert body["state"] == "failed" and body["state_zh"] == "失败" and "上传中断" in body["state_reason"]
    # The unlocked one goes on the next run.
    again = await jobs.run_now("retention", app, today=AS_OF)
    assert again.result.uploaded_clips["staging_removed"] == 1 and not parts[(gone, 4)].exists()
