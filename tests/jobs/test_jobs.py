"""Scheduled jobs: run on demand, one runner at a time across replicas (advisory lock), recorded, scheduled."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone

import pytest

from gate_service import jobs, keys
from gate_service.db.connect import create_pool
from gate_service.ledger import store as ledger
from tests.waiting import until


@pytest.fixture
def slow_job():
    calls: list[date] = []

    async def work(ctx: jobs.JobContext, today: date) -> int:
        calls.append(today)
        await asyncio.sleep(0.5)
        return len(calls)

    jobs.register(jobs.Job("test_slow", work, hour=4, minute=0))
    yield calls
    jobs.unregister("test_slow")


async def test_two_concurrent_runs_one_does_the_work(client, app, slow_job, database_url):
    a, b = await asyncio.gather(jobs.run_now("test_slow", app), jobs.run_now("test_slow", app))
    assert sorted([a.ran, b.ran]) == [False, True] and len(slow_job) == 1
    # Another replica: its own pool on the same database.
    other = await create_pool(database_url, min_size=1, max_size=2)
    try:
        replica = jobs.JobContext(other, app[keys.SETTINGS])
        a, b = await asyncio.gather(jobs.run_now("test_slow", app), jobs.run_job("test_slow", replica))
        assert sorted([a.ran, b.ran]) == [False, True] and len(slow_job) == 2
        # The lock is released after each run: the next one runs.
        again = await jobs.run_job("test_slow", replica)
        assert again.ran and again.ok and len(slow_job) == 3
    finally:
        await other.close()
    runs = await app[keys.POOL].fetch("SELECT status, runner FROM job_runs WHERE job = 'test_slow'")
    assert [r["status"] for r in runs] == ["ok"] * 3


async def test_a_failing_job_is_recorded_and_releases_its_lock(client, app):
    async def boom(ctx: jobs.JobContext, today: date) -> None:
        raise RuntimeError("disk full")

    jobs.register(jobs.Job("test_boom", boom, hour=4, minute=0))
    try:
        first = await jobs.run_now("test_boom", app)
        assert first.ran and not first.ok and "disk full" in first.error
        second = await jobs.run_now("test_boom", app)
        assert second.ran
    finally:
        jobs.unregister("test_boom")
    row = await app[keys.POOL].fetchrow("SELECT status, detail FROM job_runs WHERE job = 'test_boom' LIMIT 1")
    assert row["status"] == "failed" and "disk full" in row["detail"]["error"]
    with pytest.raises(KeyError):
        await jobs.run_now("no_such_job", app)


async def test_ledger_jobs_partitions_ahead_and_anchors(client, app):
    pool = app[keys.POOL]
    made = await jobs.run_now("ledger_partitions", app, today=date(2027, 11, 20))
    assert made.ok and made.result == ["passages_202711", "passages_202712", "passages_202801", "passages_202802"]
    assert await pool.fetchval("SELECT to_regclass('passages_202802') IS NOT NULL")
    async with pool.acquire() as conn, conn.transaction():
        await ledger.append(conn, {
            "at": datetime(2027, 11, 19, 9, tzinfo=timezone.utc), "gate_id": "g1", "zone_id": "city",
            "direction": "in", "plate": "晋LA1234", "source": "manual", "registered": False, "decision": "allow",
            "reasons": [], "rules": [], "blacklisted": False, "clean": False,
        })
    anchors = await jobs.run_now("ledger_anchors", app, today=date(2027, 11, 20))
    assert anchors.ok and anchors.result == {"day": date(2027, 11, 19), "recorded": 1}
    again = await jobs.run_now("ledger_anchors", app, today=date(2027, 11, 20))
    assert again.result["recorded"] == 0  # idempotent: a re-run after a restart records nothing twice
    assert await pool.fetchval("SELECT day FROM ledger_anchors WHERE gate_id = 'g1'") == date(2027, 11, 19)


async def test_blacklist_expiry_hook(client, app):
    outcome = await jobs.run_now("blacklist_expiry", app, today=date(2026, 1, 1))
    assert outcome.ok
    assert "expired" in outcome.result or "skipped" in outcome.result


def test_the_service_jobs_are_registered_daily():
    registered = jobs.registered()
    assert {"ledger_partitions", "ledger_anchors", "retention", "blacklist_expiry"} <= set(registered)
    assert jobs.lock_key("retention") == jobs.lock_key("retention")
    assert -(2**31) <= jobs.lock_key("retention") < 2**31


async def test_scheduler_runs_missed_jobs_soon_after_start_then_on_the_clock(client, app, slow_job):
    pool = app[keys.POOL]
    # ledger_anchors succeeded recently: no catch-up for it; everything else never ran: it runs soon.
    await pool.execute("INSERT INTO job_runs (job, finished_at, status) VALUES ('ledger_anchors', now(), 'ok')")
    scheduler = jobs.Scheduler(app, catch_up_delay=0.2)
    await scheduler.start()
    try:
        nxt = scheduler.next_runs()
        assert set(jobs.registered()) == set(nxt)
        assert nxt["ledger_anchors"] - datetime.now(timezone.utc) > timedelta(minutes=1)
        async def caught_up() -> bool:
            done = {r["job"] for r in await pool.fetch("SELECT job FROM job_runs WHERE status = 'ok'")}
            return {"ledger_partitions", "retention", "blacklist_expiry", "test_slow"} <= done

        await until(caught_up, timeout=60, step=0.1, what="the missed jobs' catch-up runs")
        # After the catch-up run, each job is next due at its local time of day.
        hour_minute = {name: (t.astimezone(jobs.SHANGHAI).hour, t.astimezone(jobs.SHANGHAI).minute)
                       for name, t in scheduler.next_runs().items()}
        assert hour_minute["retention"] == (3, 30) and hour_minute["ledger_partitions"] == (0, 5)
    finally:
        await scheduler.stop()
    assert not scheduler.scheduler.running


async def test_app_starts_the_scheduler_only_when_configured(aiohttp_client, settings):
    from gate_service.app import create_app

    off = create_app(settings)
    await aiohttp_client(off)
    assert keys.SCHEDULER not in off
    # Its own data dir: two services of one host on one data dir are refused (the video spool's lock).
    on = create_app(settings.with_overrides(run_scheduler=True, data_dir=settings.data_dir.parent / "on"))
    await aiohttp_client(on)
    assert on[keys.SCHEDULER].scheduler.running


async def test_transport_rollups_job_repairs_the_last_week(client, app, admin):
    from datetime import date, datetime, timedelta

    from gate_service.policy.model import SHANGHAI

    await client.put("/api/v1/enterprises/e1", json={"name": "某煤矿", "industry": "coal", "county": "霍州市"},
                     headers=admin)
    await client.put("/api/v1/gates/g1", json={"name": "1号门", "enterprise_id": "e1", "zone_id": "other"},
                     headers=admin)
    await client.put("/api/v1/vehicles/晋LD12345", json={"fuel_type": "electric", "vehicle_class": "heavy_truck"},
                     headers=admin)
    day = date.today() - timedelta(days=2)
    at = datetime.combine(day, datetime.min.time(), SHANGHAI).replace(hour=10).isoformat()
    resp = await client.post("/api/v1/gates/g1/passages", headers=admin,
                             json={"plate": "晋LD12345", "direction": "in", "at": at, "tonnes": 30})
    assert resp.status == 201
    pool = app[keys.POOL]
    await pool.execute("DELETE FROM transport_daily")  # as if the trigger had been bypassed
    outcome = await jobs.run_now("transport_rollups", app, today=date.today())
    assert outcome.ok, outcome.error
    row = await pool.fetchrow("SELECT trips, clean_trips, tonnes FROM transport_daily WHERE enterprise_id = 'e1'")
    assert (row["trips"], row["clean_trips"], float(row["tonnes"])) == (1, 1, 30.0)
