"""The aiohttp application: wiring of database, auth, errors and the endpoint modules."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from aiohttp import web

from gate_service import keys, ratelimit
from gate_service.auth import TokenCache, auth_middleware
from gate_service.config import Settings
from gate_service.db import open_database
from gate_service.db.connect import create_pool
from gate_service.errors import error_middleware
from gate_service.logs import access_log_middleware
from gate_service.metrics import ServiceMetrics
from gate_service.policy import load_policy_set
from gate_service.proxy import proxy_middleware
from gate_service.web import Api

log = logging.getLogger(__name__)


def build_api() -> Api:
    import blacklist
    from gate_service import audit_routes, health
    from gate_service.cameras import routes as cameras
    from gate_service.gates import routes as gates
    from gate_service.inspection import routes as inspection
    from gate_service.passages import routes as passages
    from gate_service.policy import routes as policy
    from gate_service.registry import routes as registry
    from gate_service.reports import routes as reports
    from gate_service.video import audit_routes as video_audits
    from gate_service.video import routes as video

    api = Api()
    for module in (health, registry, passages, gates, reports, video, policy, inspection, cameras, video_audits):
        api.extend(module.api.endpoints)
    api.extend(audit_routes.audited_blacklist(blacklist.endpoints()))  # + audit_log rows for its changes
    api.extend(audit_routes.api.endpoints)
    from gate_service.passages import overrides

    api.extend(overrides.api.endpoints)  # 人工放行 for the police and the bureau
    from gate_service.link import platform_routes, sites

    api.extend(platform_routes.api.endpoints)  # 联网: a site's uplink and downlink (issue 14)
    api.extend(sites.api.endpoints)
    from gate_service.link import chain_resolve, clip_holds, clip_requests, clip_upload, documents

    for module in (documents, clip_upload, clip_requests, chain_resolve, clip_holds):  # 联网: clips, photos, breaks
        api.extend(module.api.endpoints)
    return api


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings: Settings = app[keys.SETTINGS]
    db = await open_database(settings)
    app[keys.DB] = db
    app[keys.POOL] = db.pool
    log.info("database ready (%s)", "embedded" if db.embedded else "external")
    replica = None
    if settings.read_database_url:
        # Never migrated from here: a replica follows the primary's schema (it is read-only).
        # min_size 0: connect on first use, so a replica that is down never stops the gates from starting.
        replica = await create_pool(settings.read_database_url, min_size=0, max_size=settings.pool_max)
        log.info("reports and exports read from the replica at CLEANGATE_READ_DATABASE_URL")
    app[keys.READ_POOL] = replica or db.pool
    yield
    if replica is not None:
        await replica.close()
    await db.close()


async def _blacklist(app: web.Application) -> AsyncIterator[None]:
    # After the database (migrations applied), before the judge, which reads the blacklist's in-memory copy.
    import blacklist

    bl = blacklist.Blacklist(
        app[keys.POOL], principal_of=lambda r: r[keys.PRINCIPAL], body_of=lambda r: r[keys.BODY]
    )
    app[blacklist.APP_KEY] = bl
    await bl.start()
    yield
    await bl.stop()


async def _judge(app: web.Application) -> AsyncIterator[None]:
    from gate_service.ledger.store import ensure_partitions_ahead
    from gate_service.passages.facts import DB_DOWN, FactsCache
    from gate_service.passages.judge import Judge
    from gate_service.passages.spool import Spool
    from gate_service.policy.model import SHANGHAI

    pool = app[keys.POOL]
    settings = app[keys.SETTINGS]
    await ensure_partitions_ahead(pool, datetime.now(SHANGHAI).date())
    facts = FactsCache()
    await facts.load(pool)
    spool = Spool(Path(settings.data_dir) / "spool")
    judge = Judge(pool, app[keys.POLICIES], _blacklist_service(app), app[keys.METRICS], facts=facts, spool=spool)
    app[keys.JUDGE] = judge
    # Passages spooled before a crash or during an outage go to the ledger before anything new.
    await judge.drain_spool()

    async def drain_forever() -> None:
        while True:
            await asyncio.sleep(2)
            app[keys.METRICS].spool_pending.set(1 if spool.has_pending() else 0)
            if spool.has_pending():
                try:
                    await judge.drain_spool()
                except DB_DOWN:
                    continue  # still down; the next round tries again
                except Exception:  # noqa: BLE001 - keep draining later; never lose the spool
                    log.exception("spool drain failed")

    task = asyncio.ensure_future(drain_forever())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _blacklist_service(app: web.Application) -> object | None:
    try:
        import blacklist
    except ImportError:
        return None
    key = getattr(blacklist, "APP_KEY", None)
    return app.get(key) if key is not None else None


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[proxy_middleware, access_log_middleware, error_middleware, auth_middleware,
                     ratelimit.middleware()],
    )
    app[keys.SETTINGS] = settings
    app[keys.MAX_BODY] = settings.max_body_bytes
    app[keys.AUTH_FAILURES] = ratelimit.FailedAuth.from_spec(settings.rate_limits)
    app[keys.TOKEN_CACHE] = TokenCache()
    app[keys.METRICS] = ServiceMetrics()
    api = build_api()
    app[keys.API] = api
    from gate_service.link import context as link

    app[keys.POLICIES] = load_policy_set(*link.policy_paths(settings))
    app.cleanup_ctx.append(_database)
    from gate_service.revocation import revocation_context

    app.cleanup_ctx.append(revocation_context)  # revocations close sockets and reach the outage cache
    app.cleanup_ctx.append(link.platform_context)
    from gate_service.video.recorder import video_context

    app.cleanup_ctx.append(video_context)
    app.cleanup_ctx.append(_blacklist)
    # Last, so that it sees every service the other contexts started.
    app.cleanup_ctx.append(_judge)
    from gate_service.gates.service import gates_context

    app.cleanup_ctx.append(gates_context)
    from gate_service.cameras.manager import cameras_context

    app.cleanup_ctx.append(cameras_context)  # after the gates hub: camera frames go into its ingest
    app.cleanup_ctx.append(link.site_context)  # after the blacklist, video and judge it reads from
    if settings.demo:
        from gate_service.demo import demo_context

        app.cleanup_ctx.append(demo_context)
    from gate_service.jobs import scheduler_context

    app.cleanup_ctx.append(scheduler_context)
    from gate_service import console

    console.setup(app)  # the web console's pages and helper endpoints (issue 8)
    api.mount(app)
    return app
