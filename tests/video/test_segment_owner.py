"""A segment belongs to the enterprise that owned its gate when it was recorded: moving the gate to another
enterprise does not hand over its past video (the clip route already judged by the passage's enterprise)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from gate_service import keys
from tests.video.test_video_api import T0, passage, record


@pytest.fixture
async def world(client, admin):
    for ent in ("e1", "e2"):
        resp = await client.put(f"/api/v1/enterprises/{ent}", headers=admin, json={
            "name": f"企业{ent}", "industry": "steel", "county": "襄汾县", "zone_id": "xiangfen"})
        assert resp.status == 201
    resp = await client.put("/api/v1/gates/g1", json={"name": "1号门", "enterprise_id": "e1", "zone_id": "xiangfen"},
                            headers=admin)
    assert resp.status == 201
    return admin


async def _move(client, admin, gate, enterprise):
    resp = await client.put(f"/api/v1/gates/{gate}", json={"name": "1号门", "enterprise_id": enterprise,
                                                           "zone_id": "xiangfen"}, headers=admin)
    assert resp.status == 200, await resp.text()


async def test_moving_a_gate_keeps_its_past_video_with_the_enterprise_that_recorded_it(client, app, world, frames,
                                                                                      token):
    seg = await record(app, frames, seconds=2.0)
    pid = await passage(app, "g1", T0 + timedelta(seconds=1), seg, 1000, enterprise="e1")
    await _move(client, world, "g1", "e2")
    e1, e2 = await token("enterprise", enterprise_id="e1"), await token("enterprise", enterprise_id="e2")

    listed = await (await client.get("/api/v1/video/segments?from=2025-01-06&to=2025-01-06", headers=e1)).json()
    assert [s["id"] for s in listed["segments"]] == [seg]
    assert listed["segments"][0]["enterprise_id"] == "e1"
    assert (await client.get(f"/api/v1/video/segments/{seg}/video", headers=e1)).status == 200
    assert (await client.get(f"/api/v1/passages/{pid}/clip", headers=e1)).status == 200

    listed = await (await client.get("/api/v1/video/segments?from=2025-01-06&to=2025-01-06", headers=e2)).json()
    assert listed["segments"] == []
    denied = await client.get(f"/api/v1/video/segments/{seg}/video", headers=e2)
    assert denied.status == 403 and (await denied.json())["error"]["code"] == "forbidden_enterprise"
    assert (await client.get(f"/api/v1/passages/{pid}/clip", headers=e2)).status == 403

    # What the gate records after the move is the new owner's.
    now = datetime.now(timezone.utc)
    later = await record(app, frames, seconds=2.0, start=now)
    listed = await (await client.get("/api/v1/video/segments", params={"from": now.isoformat()}, headers=e2)).json()
    assert [s["id"] for s in listed["segments"]] == [later]
    listed = await (await client.get("/api/v1/video/segments", params={"from": now.isoformat()}, headers=e1)).json()
    assert listed["segments"] == []
    held = await client.post(f"/api/v1/video/segments/{seg}/hold", json={"reason": "案件调查"}, headers=world)
    assert held.status == 200 and (await held.json())["enterprise_id"] == "e1"


async def test_a_segment_indexed_after_the_move_belongs_to_the_owner_at_its_start(client, app, world):
    # A segment recorded during an outage is indexed when the database is back, possibly after a move:
    # the owner is the one in force at its start, not at its indexing.
    await _move(client, world, "g1", "e2")
    pool = app[keys.POOL]
    moved_at = await pool.fetchval("SELECT max(since) FROM gate_enterprise_history WHERE gate_id = 'g1'")
    before, after = moved_at - timedelta(minutes=5), moved_at + timedelta(seconds=1)
    owners = []
    for i, started in enumerate((before, after)):
        owners.append(await pool.fetchval(
            """INSERT INTO video_segments (gate_id, started_at, ended_at, storage_key, status, fps, width, height)
               VALUES ('g1', $1, $1::timestamptz + interval '1 second', $2, 'closed', 5, 64, 48) RETURNING enterprise_id""",
            started, f"video/g1/late-{i}.mp4"))
    assert owners == ["e1", "e2"]
    # And the owner of a recorded segment cannot be rewritten.
    seg_id = await pool.fetchval("SELECT id FROM video_segments WHERE storage_key = 'video/g1/late-0.mp4'")
    with pytest.raises(asyncpg.PostgresError, match="enterprise"):
        await pool.execute("UPDATE video_segments SET enterprise_id = 'e2' WHERE id = $1", seg_id)
