"""Typed application keys: what the app carries for its handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg
from aiohttp import web

if TYPE_CHECKING:
    from gate_service.config import Settings
    from gate_service.db import Database
    from gate_service.metrics import ServiceMetrics
    from gate_service.web import Api

SETTINGS: web.AppKey[Settings] = web.AppKey("settings", object)  # type: ignore[arg-type]
DB: web.AppKey[Database] = web.AppKey("db", object)  # type: ignore[arg-type]
POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool", asyncpg.Pool)
# Heavy reads (reports, ledger exports): a replica's pool when CLEANGATE_READ_DATABASE_URL is set, else POOL.
READ_POOL: web.AppKey[asyncpg.Pool] = web.AppKey("read_pool", asyncpg.Pool)
API: web.AppKey[Api] = web.AppKey("api", object)  # type: ignore[arg-type]
METRICS: web.AppKey[ServiceMetrics] = web.AppKey("metrics", object)  # type: ignore[arg-type]
MAX_BODY: web.AppKey[int] = web.AppKey("max_body_bytes", int)
PUBLIC_PATHS: web.AppKey[set[str]] = web.AppKey("public_paths", set)
SERVICES: web.AppKey[dict[str, Any]] = web.AppKey("services", dict)
AUTH_FAILURES: web.AppKey[Any] = web.AppKey("auth_failures", object)  # gate_service.ratelimit.FailedAuth
TOKEN_CACHE: web.AppKey[Any] = web.AppKey("token_cache", object)  # gate_service.auth.TokenCache
TOKEN_WATCH: web.AppKey[Any] = web.AppKey("token_watch", object)  # gate_service.revocation.TokenWatch


def _request_key(name: str) -> Any:
    # aiohttp >= 3.14 warns about plain string keys on requests; older releases have no RequestKey.
    cls = getattr(web, "RequestKey", None)
    return cls(name, object) if cls is not None else name


PRINCIPAL = _request_key("principal")
BODY = _request_key("body")
ENDPOINT = _request_key("endpoint")

JUDGE: web.AppKey[Any] = web.AppKey("judge", object)
POLICIES: web.AppKey[Any] = web.AppKey("policies", object)

# Video and housekeeping (gate_service.video, gate_service.jobs).
MEDIA_STORE: web.AppKey[Any] = web.AppKey("media_store", object)  # a gate_service.video.storage.BlobStore
VIDEO_RECORDER: web.AppKey[Any] = web.AppKey("video_recorder", object)  # gate_service.video.recorder.VideoRecorder
SCHEDULER: web.AppKey[Any] = web.AppKey("scheduler", object)  # gate_service.jobs.Scheduler
JOB_RUNNER: web.AppKey[Any] = web.AppKey("job_runner", object)  # gate_service.jobs.Runner
GATES: web.AppKey[Any] = web.AppKey("gates", object)  # gate_service.gates.service.GatesHub
