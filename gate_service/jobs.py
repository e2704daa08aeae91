"""Housekeeping on a clock (apscheduler 3.x): ledger partitions ahead, daily chain anchors, retention, and
whatever other packages register (blacklist expiry).

Several replicas may run the scheduler; each run of a job first takes a PostgreSQL advisory lock named after
the job and skips when another replica holds it. Every job is idempotent, so a run repeated after a restart
or a failover does no harm, and a job that has not succeeded for a day runs shortly after start-up (a stopped
service catches up instead of waiting for the next night).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import asyncpg
from aiohttp import web

from gate_service import keys
from gate_service.config import Settings
from gate_service.policy.model import SHANGHAI

log = logging.getLogger(__name__)

# pg_try_advisory_lock(int4, int4): this class for scheduled jobs, the job name's CRC32 for the object.
LOCK_CLASS = 0x63676A62  # "cgjb"


class Runner:
    """This process's side of running jobs: one job at a time, and a job already running here is skipped.

    One at a time because each run holds a pool connection for its lock and needs another for its work: a
    burst of runs (the catch-up after a restart) must not take every connection and wait on itself.
    """

    def __init__(self) -> None:
        self.running: set[str] = set()
        self._lock: asyncio.Lock | None = None

    @property
    def lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock


@dataclass
class JobContext:
    """What a job may use: the pool, the settings, the media store, and the app when running in one."""

    pool: asyncpg.Pool
    settings: Settings
    app: Mapping[Any, Any] | None = None
    runner: Runner = field(default_factory=Runner)

    @property
    def store(self) -> Any:
        store = self.app.get(keys.MEDIA_STORE) if self.app is not None else None
        if store is None:
            from gate_service.video.storage import open_store

            store = open_store(self.settings.data_dir, self.settings.media_url)
        return store

    @classmethod
    def of_app(cls, app: Mapping[Any, Any]) -> JobContext:
        runner = app.get(keys.JOB_RUNNER)
        return cls(app[keys.POOL], app[keys.SETTINGS], app, runner if runner is not None else Runner())


JobFunc = Callable[[JobContext, date], Awaitable[Any]]


@dataclass(frozen=True)
class Job:
    name: str
    func: JobFunc
    # Daily, at this local (Asia/Shanghai) time.
    hour: int
    minute: int
    description: str = ""
    catch_up: bool = True


@dataclass
class RunResult:
    job: str
    ran: bool
    ok: bool = False
    result: Any = None
    error: str | None = None
    run_id: int | None = None


_JOBS: dict[str, Job] = {}


def register(job: Job) -> Job:
    """Add a job (the hook for other packages); replaces one of the same name."""
    _JOBS[job.name] = job
    return job


def unregister(name: str) -> None:
    _JOBS.pop(name, None)


def job(name: str, *, hour: int, minute: int, description: str = "", catch_up: bool = True
        ) -> Callable[[JobFunc], JobFunc]:
    def decorate(func: JobFunc) -> JobFunc:
        register(Job(name, func, hour, minute, description or (func.__doc__ or "").strip(), catch_up))
        return func

    return decorate


def registered() -> dict[str, Job]:
    return dict(_JOBS)


def local_today() -> date:
    return datetime.now(SHANGHAI).date()


def lock_key(name: str) -> int:
    crc = zlib.crc32(name.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def _jsonable(value: Any) -> Any:
    from gate_service.web import dumps

    return json.loads(dumps(value))


async def run_job(name: str, ctx: JobContext, today: date | None = None) -> RunResult:
    """Run one job now, if no other replica is running it; the run is recorded in job_runs."""
    entry = _JOBS.get(name)
    if entry is None:
        raise KeyError(f"no job {name!r}; jobs: {', '.join(sorted(_JOBS))}")
    today = today or local_today()
    runner = ctx.runner
    if name in runner.running:
        log.info("job %s: already running here; skipped", name)
        return RunResult(name, ran=False)
    runner.running.add(name)
    try:
        async with runner.lock:
            return await _run_locked(entry, ctx, today)
    finally:
        runner.running.discard(name)


async def _run_locked(entry: Job, ctx: JobContext, today: date) -> RunResult:
    name = entry.name
    # A session lock on a connection of its own, held for the whole run; asyncpg's pool resets (and so unlocks)
    # a connection when it goes back, so even a crash in here cannot leave the lock taken.
    async with ctx.pool.acquire() as lock_conn:
        if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, lock_key(name)):
            log.info("job %s: another replica is running it; skipped", name)
            return RunResult(name, ran=False)
        try:
            run_id = await ctx.pool.fetchval(
                "INSERT INTO job_runs (job, runner, detail) VALUES ($1, $2, $3) RETURNING id",
                name, socket.gethostname(), {"today": today.isoformat()})
            try:
                result = await entry.func(ctx, today)
            except Exception as exc:  # noqa: BLE001 - a failed job is recorded and retried next time
                log.exception("job %s failed", name)
                await ctx.pool.execute(
                    "UPDATE job_runs SET finished_at = now(), status = 'failed', detail = $2 WHERE id = $1",
                    run_id, {"today": today.isoformat(), "error": f"{type(exc).__name__}: {exc}"})
                return RunResult(name, ran=True, ok=False, error=str(exc), run_id=run_id)
            detail = _jsonable({"today": today, "result": result})
            await ctx.pool.execute(
                "UPDATE job_runs SET finished_at = now(), status = 'ok', detail = $2 WHERE id = $1", run_id, detail)
            log.info("job %s done: %s", name, json.dumps(detail["result"], ensure_ascii=False)[:500])
            return RunResult(name, ran=True, ok=True, result=result, run_id=run_id)
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock($1, $2)", LOCK_CLASS, lock_key(name))


async def run_now(name: str, app: Mapping[Any, Any], *, today: date | None = None) -> RunResult:
    """Run a job of a started app at once (tests, operators), under the same lock as the scheduled runs."""
    return await run_job(name, JobContext.of_app(app), today)


# ---- the service's own jobs --------------------------------------------------------------------------


@job("ledger_partitions", hour=0, minute=5, description="create this month's and the next 3 ledger partitions")
async def _ledger_partitions(ctx: JobContext, today: date) -> list[str]:
    from gate_service.ledger.store import ensure_partitions_ahead

    return await ensure_partitions_ahead(ctx.pool, today, months=3)


@job("ledger_anchors", hour=0, minute=10, description="record each gate's chain head for yesterday")
async def _ledger_anchors(ctx: JobContext, today: date) -> dict[str, Any]:
    from gate_service.ledger.store import record_anchors

    day = today - timedelta(days=1)
    async with ctx.pool.acquire() as conn:
        return {"day": day, "recorded": await record_anchors(conn, day)}


@job("blacklist_expiry", hour=0, minute=1, description="expire blacklist entries whose last day has passed")
async def _blacklist_expiry(ctx: JobContext, today: date) -> dict[str, Any]:
    # The blacklist is another package: found at run time, and its absence is not an error.
    try:
        import blacklist
    except ImportError:
        return {"skipped": "no blacklist package"}
    key = getattr(blacklist, "APP_KEY", None)
    service = ctx.app.get(key) if ctx.app is not None and key is not None else None
    expire = getattr(service, "expire_due", None)
    if expire is None:
        return {"skipped": "blacklist service not running"}
    return {"expired": await expire(today)}


@job("transport_rollups", hour=2, minute=0,
     description="recompute the last 7 days of clean-transport roll-ups from the ledger")
async def _transport_rollups(ctx: JobContext, today: date) -> dict[str, Any]:
    # The roll-ups are kept by a trigger as passages are written; this nightly pass repairs anything that
    # bypassed it (rows restored into a partition directly, a late spool replay across midnight).
    from gate_service.reports.store import rebuild

    first, last = today - timedelta(days=7), today - timedelta(days=1)
    async with ctx.pool.acquire() as conn:
        return {"from": first, "to": last, "rows": await rebuild(conn, first, last)}


@job("retention", hour=3, minute=30, description="drop ledger months and video segments past retention")
async def _retention(ctx: JobContext, today: date) -> Any:
    from gate_service.retention.apply import run_retention

    return await run_retention(ctx.pool, ctx.store, ctx.settings, today)


# ---- the scheduler ---------------------------------------------------------------------------------


class Scheduler:
    """apscheduler's AsyncIOScheduler with the registered jobs, each run under its advisory lock."""

    def __init__(self, app: Mapping[Any, Any], *, catch_up_delay: float = 60.0) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self.app = app
        self.catch_up_delay = catch_up_delay
        self.scheduler = AsyncIOScheduler(timezone=SHANGHAI)
        self._running: set[asyncio.Task[RunResult]] = set()

    async def start(self) -> None:
        from apscheduler.triggers.cron import CronTrigger

        last_ok = await self._last_success()
        now = datetime.now(timezone.utc)
        for name, entry in sorted(registered().items()):
            options: dict[str, Any] = {}
            if entry.catch_up and (last_ok.get(name) is None or now - last_ok[name] > timedelta(hours=25)):
                # Missed while the service was down: run soon, then on the clock.
                options["next_run_time"] = now + timedelta(seconds=self.catch_up_delay)
            self.scheduler.add_job(
                self._fire, CronTrigger(hour=entry.hour, minute=entry.minute, timezone=SHANGHAI), args=[name],
                id=name, name=name, coalesce=True, max_instances=1, misfire_grace_time=3600, replace_existing=True,
                **options)
        self.scheduler.start()
        log.info("scheduler started: %s", ", ".join(
            f"{j.id} next {j.next_run_time.isoformat() if j.next_run_time else '-'}"
            for j in self.scheduler.get_jobs()))

    async def stop(self, timeout: float = 30.0) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn
        if self._running:
            # Let a run in progress finish (it holds the lock and writes its job_runs row), within reason.
            _, pending = await asyncio.wait(self._running, timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    def next_runs(self) -> dict[str, datetime | None]:
        return {j.id: j.next_run_time for j in self.scheduler.get_jobs()}

    async def _fire(self, name: str) -> None:
        task = asyncio.create_task(run_now(name, self.app), name=f"job-{name}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        # Shielded: apscheduler cancels its pending runs at shutdown; stop() lets a run finish instead.
        await asyncio.shield(task)

    async def _last_success(self) -> dict[str, datetime]:
        rows = await self.app[keys.POOL].fetch(
            "SELECT job, max(finished_at) AS at FROM job_runs WHERE status = 'ok' GROUP BY job")
        return {r["job"]: r["at"] for r in rows}


async def scheduler_context(app: web.Application) -> AsyncIterator[None]:
    """App cleanup context: the scheduler, when settings.run_scheduler is on."""
    settings: Settings = app[keys.SETTINGS]
    # Shared by the scheduler and run_now() on this app, so they never run the same job twice at once.
    app[keys.JOB_RUNNER] = Runner()
    if not settings.run_scheduler:
        yield
        return
    scheduler = Scheduler(app)
    await scheduler.start()
    app[keys.SCHEDULER] = scheduler
    try:
        yield
    finally:
        await scheduler.stop()

