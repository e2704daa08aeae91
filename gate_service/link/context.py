"""Wiring into the app: every service can be a platform (sites enrolled with site tokens); a service with
CLEANGATE_PLATFORM_URL is also a site and runs the uplink and downlink."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from gate_service import keys
from gate_service.link.platform_routes import HUB

log = logging.getLogger(__name__)

STATUS: web.AppKey[Any] = web.AppKey("link_status", object)  # a LinkStatus on a site, absent elsewhere
UPLINK: web.AppKey[Any] = web.AppKey("link_uplink", object)


def plans_dir(settings: Any) -> Path:
    return Path(settings.data_dir) / "link" / "plans"


def policy_paths(settings: Any) -> tuple[Path, ...]:
    """A site also judges by the plan files the platform sent down (kept in its data dir)."""
    extra = plans_dir(settings)
    return (*settings.policy_paths, extra) if settings.platform_url and extra.is_dir() else settings.policy_paths


async def platform_context(app: web.Application) -> AsyncIterator[None]:
    from gate_service.link.hub import Hub

    settings = app[keys.SETTINGS]
    hub = Hub(app[keys.POOL], tuple(settings.policy_paths))
    app[HUB] = hub  # started by the first site's downlink request
    yield
    await hub.stop()


async def site_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    if not settings.platform_url:
        yield
        return
    from gate_service.link.adapter import adapter_for
    from gate_service.link.downlink import Downlink
    from gate_service.link.keys import load_or_create
    from gate_service.link.side import SideStreams
    from gate_service.link.status import LinkStatus
    from gate_service.link.uplink import Uplink

    if not settings.platform_token:
        raise SystemExit("CLEANGATE_PLATFORM_URL is set but CLEANGATE_PLATFORM_TOKEN is not (a site token from "
                         "the platform: gate-service token create --role site ...)")
    key = load_or_create(Path(settings.data_dir))
    status = LinkStatus(settings.platform_url)
    app[STATUS] = status
    pool = app[keys.POOL]
    uplink_adapter = adapter_for(settings.platform_adapter, settings.platform_url, settings.platform_token)
    down_adapter = adapter_for(settings.platform_adapter, settings.platform_url, settings.platform_token)
    uplink = Uplink(pool, uplink_adapter, key, status, max_backoff=settings.link_max_backoff,
                    batch_size=settings.link_batch_size,
                    media=SideStreams(pool, app.get(keys.MEDIA_STORE)))
    app[UPLINK] = uplink

    def reload_plans(candidate: Path) -> None:
        from gate_service.policy import load_policy_set

        fresh = load_policy_set(*settings.policy_paths, candidate)  # raises when the plans do not load
        # In place: the judge, the routes and the reports hold this one object.
        app[keys.POLICIES].__dict__.update(fresh.__dict__)
        log.info("plan files from the platform loaded")

    import blacklist
    from gate_service.link.clip_site import ClipUploader

    clip_adapter = adapter_for(settings.platform_adapter, settings.platform_url, settings.platform_token)
    clips = ClipUploader(pool, clip_adapter, app.get(keys.MEDIA_STORE), max_backoff=settings.link_max_backoff)
    downlink = Downlink(pool, down_adapter, status, blacklist=app[blacklist.APP_KEY], plans_dir=plans_dir(settings),
                        reload_plans=reload_plans, max_backoff=settings.link_max_backoff, on_video=clips.offer)
    await downlink.load()
    tasks = [asyncio.create_task(uplink.run(), name="link-uplink"),
             asyncio.create_task(downlink.run(), name="link-downlink"),
             asyncio.create_task(clips.run(), name="link-clips")]
    log.info("site: linked to the platform at %s", settings.platform_url)
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for adapter in (uplink_adapter, down_adapter, clip_adapter):
        await adapter.close()
