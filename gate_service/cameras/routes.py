"""HTTP endpoints of the gate cameras: register one (its RTSP URL kept, answered redacted), list them with
their live state, remove one."""

from __future__ import annotations

import re

import asyncpg
from aiohttp import web

from gate_service import keys
from gate_service.auth import audit, require_gate
from gate_service.cameras import store
from gate_service.cameras.redact import redact_url
from gate_service.errors import ApiError, not_found
from gate_service.registry.schemas import ID_PATTERN
from gate_service.web import Api, json_response

api = Api()
TAG = "cameras"

CAMERA = {
    "type": "object",
    "required": ["rtsp_url", "roles"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200, "nullable": True},
        "vendor": {"type": "string", "enum": ["generic", "hikvision", "dahua", "uniview"]},
        "rtsp_url": {"type": "string", "pattern": r"^rtsps?://[^\s]+$", "maxLength": 1000},
        "roles": {"type": "array", "minItems": 1, "maxItems": 2, "uniqueItems": True,
                  "items": {"type": "string", "enum": ["read", "record"]}},
        "read_fps": {"type": "number", "minimum": 0.5, "maximum": 25},
        "direction": {"type": "string", "enum": ["in", "out"]},
        "enabled": {"type": "boolean"},
    },
}


def _ident(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not re.match(ID_PATTERN, value):
        raise ApiError(400, "bad_id", f"编号格式无效: {value} / ids are letters, digits, '-', '_' and '.'", field=name)
    return value


def _with_state(request: web.Request, row: dict) -> dict:
    from gate_service.cameras.manager import CAMERAS

    out = store.public(row)
    manager = request.app.get(CAMERAS)
    states = {s["camera_id"]: s for s in manager.status(row["gate_id"])} if manager is not None else {}
    state = states.get(row["id"])
    out["state"] = {k: v for k, v in state.items() if k not in ("camera_id", "gate_id", "roles", "rtsp_url")} \
        if state else None
    return out


@api.route("PUT", "/api/v1/gates/{gate_id}/cameras/{camera_id}", roles=("admin",), tag=TAG, body=CAMERA,
           summary="Register or change a gate camera (RTSP; roles read / record); the URL is answered redacted")
async def put_camera(request: web.Request) -> web.Response:
    gate_id, camera_id = _ident(request, "gate_id"), _ident(request, "camera_id")
    body = request[keys.BODY]
    pool = request.app[keys.POOL]
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT 1 FROM gates WHERE id = $1", gate_id) is None:
            raise not_found("门岗 gate", gate_id)
        other = await conn.fetchval("SELECT gate_id FROM gate_cameras WHERE id = $1", camera_id)
        if other is not None and other != gate_id:
            raise ApiError(409, "camera_of_another_gate",
                           f"摄像机 {camera_id} 属于门岗 {other} / the camera belongs to gate {other}", field="camera_id")
        try:
            row, created = await store.upsert(conn, camera_id, gate_id, body)
        except ValueError:
            raise ApiError(422, "redacted_url", "请填写完整的 RTSP 地址(含用户名密码)/ send the full RTSP URL, "
                           "not the redacted one", field="rtsp_url") from None
        except asyncpg.CheckViolationError:
            raise ApiError(422, "invalid_camera", "摄像机参数无效 / invalid camera settings") from None
        await audit(conn, request, "camera.put", camera_id,
                    {**body, "gate_id": gate_id, "rtsp_url": redact_url(body["rtsp_url"])})
    await _reload(request, camera_id)
    return json_response(_with_state(request, row), status=201 if created else 200)


@api.route("GET", "/api/v1/gates/{gate_id}/cameras", roles=("admin", "ecology", "kiosk"), tag=TAG,
           summary="A gate's cameras with their state (connected, fps, last frame, errors)")
async def list_cameras(request: web.Request) -> web.Response:
    gate_id = _ident(request, "gate_id")
    require_gate(request, gate_id)
    rows = await store.list_for(request.app[keys.POOL], gate_id)
    return json_response({"gate_id": gate_id, "cameras": [_with_state(request, r) for r in rows]})


@api.route("DELETE", "/api/v1/gates/{gate_id}/cameras/{camera_id}", roles=("admin",), tag=TAG,
           summary="Remove a gate camera (its recorded segments stay)")
async def delete_camera(request: web.Request) -> web.Response:
    gate_id, camera_id = _ident(request, "gate_id"), _ident(request, "camera_id")
    pool = request.app[keys.POOL]
    async with pool.acquire() as conn, conn.transaction():
        row = await store.get(conn, camera_id)
        if row is None or row["gate_id"] != gate_id:
            raise not_found("摄像机 camera", camera_id)
        await store.delete(conn, camera_id)
        await audit(conn, request, "camera.delete", camera_id, {"gate_id": gate_id})
    await _reload(request, camera_id)
    return json_response({"deleted": camera_id})


async def _reload(request: web.Request, camera_id: str) -> None:
    from gate_service.cameras.manager import CAMERAS

    manager = request.app.get(CAMERAS)
    if manager is not None and request.app[keys.SETTINGS].pull_cameras:
        await manager.reload(camera_id)
