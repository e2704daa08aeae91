"""Liveness, the OpenAPI description and metrics."""

from __future__ import annotations

import asyncio
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from gate_service import keys
from gate_service.web import Api, json_response, openapi

api = Api()


def service_version() -> str:
    try:
        return version("cleangate")
    except PackageNotFoundError:
        return "0+unknown"


@api.route("GET", "/healthz", roles=(), summary="Service and database health (no token needed)", tag="health")
async def healthz(request: web.Request) -> web.Response:
    pool = request.app[keys.POOL]
    try:
        await asyncio.wait_for(pool.fetchval("SELECT 1"), timeout=2)
        database = "ok"
    except Exception:  # noqa: BLE001 - any failure to answer is "unavailable" to a monitor
        database = "unavailable"
    judge = request.app.get(keys.JUDGE)
    recorder = request.app.get(keys.VIDEO_RECORDER)
    body = {
        "status": "ok" if database == "ok" else "degraded",
        "database": database,
        "embedded_database": request.app[keys.SETTINGS].database_url is None,
        # What an outage left on this host's disk that is not in the database yet (it drains by itself):
        # decided passages waiting for the ledger, and finished video segments waiting to be indexed.
        "passages_spooled": bool(judge is not None and judge.spool is not None and judge.spool.has_pending()),
        "video_segments_pending_index": recorder.pending_index if recorder is not None else 0,
        # How many registry cameras this host pulls and how many stream now (details: /api/v1/gates/{id}/cameras).
        "cameras": _cameras(request.app),
        "version": service_version(),
    }
    from gate_service.link.context import STATUS

    if request.app.get(STATUS) is not None:  # a site: how its link to the platform stands (issue 14)
        body["platform"] = request.app[STATUS].public()
    return json_response(body, status=200 if database == "ok" else 503)


def _cameras(app: web.Application) -> dict[str, int]:
    from gate_service.cameras.manager import CAMERAS

    manager = app.get(CAMERAS)
    return manager.summary() if manager is not None else {"total": 0, "connected": 0}


@api.route("GET", "/api/v1/openapi.json", roles=("admin", "kiosk", "police", "ecology", "enterprise"),
           summary="This API's OpenAPI 3 description", tag="health")
async def openapi_json(request: web.Request) -> web.Response:
    return json_response(openapi(request.app[keys.API], title="cleangate", version=service_version()))


@api.route("GET", "/metrics", roles=("admin",), summary="Prometheus metrics", tag="health", produces=("text/plain",))
async def metrics(request: web.Request) -> web.Response:
    return web.Response(text=request.app[keys.METRICS].registry.render(), content_type="text/plain")
