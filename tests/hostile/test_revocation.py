"""A revoked token stops working everywhere within seconds: open WebSockets are closed (4401 token_revoked),
the outage cache forgets it, and passages a WebSocket produced name the token that sent the frames."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from gate_service import auth, keys
from gate_service.config import Settings
from tests.conftest import EASYPR
from tests.waiting import until

PHOTO = EASYPR / "shared_0001.jpg"  # 京A88731, dev half


async def _gate(client, admin, gate="city-1"):
    resp = await client.put(f"/api/v1/gates/{gate}", json={"name": "市区检查站", "zone_id": "city"}, headers=admin)
    assert resp.status == 201


async def _kiosk(app, gate="city-1"):
    token_id, secret = await auth.create_token(app[keys.POOL], "kiosk", gate_id=gate, name="kiosk")
    return token_id, {"Authorization": f"Bearer {secret}"}


async def _closed_within(ws, seconds):
    """The close frame, read past any messages sent before it; None if the socket stays open."""
    deadline = time.monotonic() + seconds
    seen = []
    while time.monotonic() < deadline:
        try:
            msg = await ws.receive(timeout=max(0.05, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            return None, seen
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return msg, seen
        seen.append(msg)
    return None, seen


@pytest.mark.parametrize("route", ["stream", "watch"])
async def test_an_open_websocket_is_closed_when_its_token_is_revoked_elsewhere(client, app, admin, database_url,
                                                                               route):
    await _gate(client, admin)
    token_id, kiosk = await _kiosk(app)
    ws = await client.ws_connect(f"/api/v1/gates/city-1/{route}", headers=kiosk)
    assert (await ws.receive_json(timeout=10))["type"] == "hello"
    # Revoked from another process, as `gate-service token revoke` or another replica would.
    other = await asyncpg.connect(database_url)
    try:
        assert await auth.revoke_token(other, token_id)
    finally:
        await other.close()
    started = time.monotonic()
    msg, seen = await _closed_within(ws, 5)
    assert msg is not None, "the socket stayed open after its token was revoked"
    assert time.monotonic() - started < 5
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401, msg  # what a browser's CloseEvent.code shows
    assert "token_revoked" in msg.extra
    assert any(m.type == aiohttp.WSMsgType.TEXT and "token_revoked" in m.data for m in seen)
    # And it cannot reconnect.
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await client.ws_connect(f"/api/v1/gates/city-1/{route}", headers=kiosk)
    assert err.value.status == 401


async def test_a_lost_notification_is_caught_by_the_periodic_recheck(client, app, admin):
    await _gate(client, admin)
    token_id, kiosk = await _kiosk(app)
    watch = app[keys.TOKEN_WATCH]
    ws = await client.ws_connect("/api/v1/gates/city-1/watch", headers=kiosk)
    assert (await ws.receive_json(timeout=10))["type"] == "hello"
    # A revocation whose notification never arrives (the trigger is bypassed: as if the listener was away).
    pool = app[keys.POOL]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")  # triggers do not fire
        await conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE id = $1", token_id)
    msg, _ = await _closed_within(ws, 1.0)
    assert msg is None  # nothing told us yet
    await watch.recheck()
    msg, _ = await _closed_within(ws, 5)
    assert msg is not None and msg.data == 4401
    assert watch.recheck_interval <= 15  # the bound on how stale the outage cache may be


@pytest.mark.skipif(not PHOTO.exists(), reason=f"EasyPR photos not found at {EASYPR}")
async def test_passages_from_a_websocket_carry_the_token_id(client, app, admin):
    import cv2

    await _gate(client, admin)
    token_id, kiosk = await _kiosk(app)
    image = cv2.imread(str(PHOTO))
    ws = await client.ws_connect("/api/v1/gates/city-1/stream", headers=kiosk)
    assert (await ws.receive_json(timeout=10))["type"] == "hello"
    for i in range(6):
        await ws.send_bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92 - i])[1].tobytes())
        await asyncio.sleep(0.3)
    passage = None
    deadline = time.monotonic() + 90
    while passage is None and time.monotonic() < deadline:
        msg = await ws.receive_json(timeout=max(1, deadline - time.monotonic()))
        if msg["type"] == "passage":
            passage = msg["passage"]
    await ws.close()
    assert passage is not None and passage["plate"] == "京A88731"
    row = await app[keys.POOL].fetchrow("SELECT token_id, source FROM passages WHERE id = $1::uuid",
                                        passage["passage_id"])
    assert row["source"] == "camera" and row["token_id"] == token_id


@pytest.fixture
def own_server():
    from gate_service.db.embedded import embedded_server

    root = Path(tempfile.mkdtemp(prefix="cg-revoke-"))
    server = embedded_server(root, cleanup_mode="delete")
    yield server
    server.cleanup()
    shutil.rmtree(root, ignore_errors=True)


async def test_a_token_revoked_before_an_outage_does_not_work_during_it(aiohttp_client, own_server, tmp_path):
    from gate_service.app import create_app
    from tests.pg_outage import start_server, stop_server

    settings = Settings(database_url=own_server.get_uri(), data_dir=tmp_path / "data", run_scheduler=False,
                        pool_max=4)
    app = create_app(settings)
    client = await aiohttp_client(app)
    _, secret = await auth.create_token(app[keys.POOL], "admin", name="admin")
    admin = {"Authorization": f"Bearer {secret}"}
    await _gate(client, admin)
    kept_id, kept = await _kiosk(app)
    gone_id, gone = await _kiosk(app)
    for headers in (kept, gone):  # both seen valid: both in the last-known cache
        resp = await client.post("/api/v1/gates/city-1/passages", headers=headers,
                                 json={"plate": "晋LA0001", "direction": "in"})
        assert resp.status == 201
    other = await asyncpg.connect(own_server.get_uri())
    try:
        assert await auth.revoke_token(other, gone_id)  # elsewhere; this replica sees no request with it
    finally:
        await other.close()
    cache = app[keys.TOKEN_CACHE]
    await until(lambda: gone_id not in {p.token_id for p in cache.valid.values()},
                what="the revoked token dropped from this replica's last-known cache")
    await asyncio.to_thread(stop_server, own_server)
    try:
        refused = await client.post("/api/v1/gates/city-1/passages", headers=gone,
                                    json={"plate": "晋LA0002", "direction": "in"})
        assert refused.status == 401, await refused.text()
        assert (await refused.json())["error"]["code"] == "invalid_token"
        accepted = await client.post("/api/v1/gates/city-1/passages", headers=kept,
                                     json={"plate": "晋LA0003", "direction": "in"})
        assert accepted.status == 201 and (await accepted.json())["spooled"] is True
    finally:
        await asyncio.to_thread(start_server, own_server)
