"""The gates' in-memory copy: changes reach a running service (and other replicas) without restart;
expiry; the event table is append-only."""

import asyncio
import contextlib
from datetime import datetime, timedelta

import asyncpg
import pytest

import blacklist
from blacklist.model import SHANGHAI, SystemActor
from blacklist.store import Listing
from tests.waiting import until

NOW = datetime.now(SHANGHAI)
TODAY = NOW.date()
POLICE = SystemActor(role="police", actor="replica-2-police")


async def eventually(condition, timeout: float = 15.0) -> float:
    """Wait until condition() is true; return how long it took. Bounded: NOTIFY, not the 60 s refresh (the
    replicas' own refresh is an hour away; 15 s leaves a loaded machine time to carry the notification)."""
    start = asyncio.get_running_loop().time()
    await until(condition, timeout, what="the replica's cache to follow")
    return asyncio.get_running_loop().time() - start


@contextlib.asynccontextmanager
async def replica(database_url, *, refresh_interval=3600.0):
    """Another Blacklist on its own pool, as another service process would have. Its periodic refresh is
    an hour away, so whatever it learns within seconds came by NOTIFY."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=3)
    bl = blacklist.Blacklist(pool, principal_of=lambda r: None, body_of=lambda r: {},
                             refresh_interval=refresh_interval)
    await bl.start()
    try:
        yield bl
    finally:
        await bl.stop()
        await pool.close()


async def test_a_plate_added_over_http_reaches_the_running_service_and_other_replicas(
        client, app, token, database_url):
    police = await token("police")
    local = app[blacklist.APP_KEY]
    assert local.lookup("晋LA1234", NOW) is None
    async with replica(database_url) as other:
        assert other.status()["listening"]
        resp = await client.post("/api/v1/blacklist", headers=police, json={
            "plate": "晋LA1234", "reason": "obd_tampering", "note": "路检发现"})
        assert resp.status == 201
        # This replica answered only after its own copy showed the change: the next passage is judged on it.
        entry = local.lookup("晋LA1234", NOW)
        assert entry is not None
        assert (entry.plate, entry.reason, entry.valid_until, entry.note) == ("晋LA1234", "obd_tampering", None,
                                                                             "路检发现")
        assert entry.added_at.tzinfo is not None and entry.reason_label == "OBD篡改"
        # Another process learns it by NOTIFY.
        await eventually(lambda: other.lookup("晋LA1234", NOW) is not None)
        assert other.lookup("晋LA1234", NOW) == entry

        # And the other way round: a write on the other replica reaches the HTTP service.
        await other.add(Listing("晋LB2222", "over_limit", valid_until=TODAY + timedelta(days=30)), POLICE)
        await eventually(lambda: local.lookup("晋LB2222", NOW) is not None)
        assert local.lookup("晋LB2222", NOW).valid_until == TODAY + timedelta(days=30)

        # Revoked: no longer cited, anywhere.
        resp = await client.delete("/api/v1/blacklist/晋LA1234", json={"reason": "复检合格"}, headers=police)
        assert resp.status == 200
        assert local.lookup("晋LA1234", NOW) is None
        await eventually(lambda: other.lookup("晋LA1234", NOW) is None)
        history = await (await client.get("/api/v1/blacklist/晋LA1234/history", headers=police)).json()
        assert [e["kind"] for e in history["events"]] == ["add", "revoke"]


async def test_lookup_normalises_and_never_touches_the_database(client, app, token):
    await client.post("/api/v1/blacklist", json={"plate": "晋LD12345", "reason": "device_removed"},
                      headers=await token("police"))
    local = app[blacklist.APP_KEY]
    pool, local.pool = local.pool, None  # any database access would now fail
    try:
        assert local.lookup("晋LD12345", NOW).reason == "device_removed"
        assert local.lookup("晋l·d12345", NOW) is not None
        assert local.lookup("晋LD12346", NOW) is None
        assert local.lookup(None, NOW) is None  # type: ignore[arg-type]
        assert [e.plate for e in local.active_entries(NOW)] == ["晋LD12345"]
    finally:
        local.pool = pool


async def test_listener_reconnects_after_its_connection_is_killed(client, app, database_url):
    local = app[blacklist.APP_KEY]
    pid = local.listener.connection.get_server_pid()
    killer = await asyncpg.connect(database_url)
    try:
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await killer.close()
    async with replica(database_url) as other:
        # Written while the service may still be reconnecting: caught by NOTIFY or by the reload on reconnect.
        await other.add(Listing("晋LC3333", "over_limit"), POLICE)
        await eventually(lambda: local.lookup("晋LC3333", NOW) is not None)
        await eventually(lambda: local.reconnects >= 1 and local.status()["listening"])
        assert local.listener.connection.get_server_pid() != pid
        # The new listener carries notifications as before.
        await other.add(Listing("晋LC4444", "other"), POLICE)
        await eventually(lambda: local.lookup("晋LC4444", NOW) is not None)


async def test_periodic_refresh_catches_a_change_nobody_notified(client, app, database_url):
    async with replica(database_url, refresh_interval=0.3) as other:
        # A row written behind the event table's back (no event, so no NOTIFY): only the full refresh sees it.
        await other.pool.execute(
            "INSERT INTO blacklist_entries (plate, reason, added_by, added_role) VALUES ('晋LE5555', 'other', 'x', 'x')")
        waited = await eventually(lambda: other.lookup("晋LE5555", NOW) is not None, timeout=15.0)
        assert waited > 0.05


async def test_expiry_by_date_and_by_the_daily_job(client, app, token):
    police = await token("police")
    local = app[blacklist.APP_KEY]
    resp = await client.post("/api/v1/blacklist", headers=police,
                             json={"plate": "晋LF6666", "reason": "over_limit", "valid_until": TODAY.isoformat()})
    assert resp.status == 201
    # valid_until is the last day it applies.
    assert local.lookup("晋LF6666", NOW) is not None
    end_of_day = datetime.combine(TODAY, datetime.max.time(), SHANGHAI)
    assert local.lookup("晋LF6666", end_of_day) is not None
    tomorrow = TODAY + timedelta(days=1)
    assert local.lookup("晋LF6666", end_of_day + timedelta(seconds=1)) is None  # no job needed
    assert local.lookup("晋LF6666", NOW + timedelta(days=1)) is None

    assert await local.expire_due(TODAY) == 0  # still in force today
    assert await local.expire_due(tomorrow) == 1
    assert await local.expire_due(tomorrow) == 0  # idempotent
    assert await local.expire_due(tomorrow + timedelta(days=3)) == 0
    assert local.lookup("晋LF6666", NOW) is None  # closed entries leave the copy
    history = await (await client.get("/api/v1/blacklist/晋LF6666/history", headers=police)).json()
    assert [(e["kind"], e["role"], e["source"]) for e in history["events"]] == [
        ("add", "police", "api"), ("expire", "system", "scheduler")]
    expired = await (await client.get("/api/v1/blacklist?status=expired", headers=police)).json()
    assert [e["plate"] for e in expired["entries"]] == ["晋LF6666"]
    # Expired is not revoked: revoking it is refused, listing it again opens a new entry.
    resp = await client.delete("/api/v1/blacklist/晋LF6666", json={"reason": "x"}, headers=police)
    assert resp.status == 404


async def test_an_entry_past_its_last_day_is_not_applied_before_the_job_runs(client, app, token):
    police = await token("police")
    local = app[blacklist.APP_KEY]
    yesterday = TODAY - timedelta(days=1)
    # As if listed last week until yesterday and the daily job has not run yet (the API refuses past dates).
    async with local.pool.acquire() as conn, conn.transaction():
        entry_id = await conn.fetchval(
            """INSERT INTO blacklist_entries (plate, reason, valid_until, added_by, added_role, added_at)
               VALUES ('晋LG7777', 'obd_tampering', $1, 'police-1', 'police', now() - interval '7 days')
               RETURNING id""", yesterday)
        await conn.execute(
            """INSERT INTO blacklist_events (entry_id, plate, kind, actor, role, reason, valid_until, source)
               VALUES ($1, '晋LG7777', 'add', 'police-1', 'police', 'obd_tampering', $2, 'api')""",
            entry_id, yesterday)
    await eventually(lambda: "晋LG7777" in {e.plate for e in local._active.values()})
    assert local.lookup("晋LG7777", NOW) is None
    assert local.lookup("晋LG7777", NOW - timedelta(days=1)) is not None
    listing = await (await client.get("/api/v1/blacklist", headers=police)).json()
    assert listing["entries"] == []
    expired = await (await client.get("/api/v1/blacklist?status=expired", headers=police)).json()
    assert [e["plate"] for e in expired["entries"]] == ["晋LG7777"]

    # Listing it again before the job ran: the old entry is marked expired first, then a new one opens.
    resp = await client.post("/api/v1/blacklist", json={"plate": "晋LG7777", "reason": "over_limit"},
                             headers=police)
    assert resp.status == 201 and (await resp.json())["id"] != entry_id
    assert local.lookup("晋LG7777", NOW).reason == "over_limit"
    assert await local.expire_due(TODAY) == 0
    history = await (await client.get("/api/v1/blacklist/晋LG7777/history", headers=police)).json()
    assert [e["kind"] for e in history["events"]] == ["add", "expire", "add"]


async def test_expire_due_records_once(client, app):
    local = app[blacklist.APP_KEY]
    for plate, days in (("晋LH0001", 0), ("晋LH0002", 1), ("晋LH0003", 5)):
        await local.add(Listing(plate, "other", valid_until=TODAY + timedelta(days=days)), POLICE)
    await local.add(Listing("晋LH0004", "other"), POLICE)  # until revoked: never expires
    in_three_days = TODAY + timedelta(days=3)
    results = await asyncio.gather(local.expire_due(in_three_days), local.expire_due(in_three_days))
    assert sorted(results) == [0, 2]  # two concurrent runs (two replicas) record each expiry once
    count = await local.pool.fetchval("SELECT count(*) FROM blacklist_events WHERE kind = 'expire'")
    assert count == 2
    assert sorted(e.plate for e in local.active_entries(NOW)) == ["晋LH0003", "晋LH0004"]


async def test_the_event_table_is_append_only(client, app, database_url):
    local = app[blacklist.APP_KEY]
    await local.add(Listing("晋LJ8888", "other"), POLICE)
    conn = await asyncpg.connect(database_url)
    try:
        for sql in ("UPDATE blacklist_events SET actor = 'someone else'", "DELETE FROM blacklist_events",
                    "TRUNCATE blacklist_events CASCADE"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(sql)
        assert await conn.fetchval("SELECT count(*) FROM blacklist_events") == 1
    finally:
        await conn.close()
