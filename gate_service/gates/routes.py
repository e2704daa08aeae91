"""Kiosk frame endpoints: one JPEG per POST, or a WebSocket stream of JPEGs with reads/passages back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import WSMsgType, web

from gate_service import keys
from gate_service.auth import WEBSOCKET_ROUTES, WS_PROTOCOL, require_gate
from gate_service.errors import ApiError, not_found
from gate_service.gates.ingest import Overloaded
from gate_service.registry import store as registry
from gate_service.validation import loads_json
from gate_service.web import Api, dumps, json_response
from plate_reader.image import ImageError

log = logging.getLogger(__name__)
api = Api()

DIRECTION = {"direction": {"type": "string", "enum": ["in", "out"]}}
IMAGE_TYPES = ("image/jpeg", "image/png", "application/octet-stream")
WATCH, STREAM = "/api/v1/gates/{gate_id}/watch", "/api/v1/gates/{gate_id}/stream"
WEBSOCKET_ROUTES.update((WATCH, STREAM))


async def _gate(request: web.Request) -> str:
    gate_id = request.match_info["gate_id"]
    require_gate(request, gate_id)
    if await registry.get_gate(request.app[keys.POOL], gate_id) is None:
        raise not_found("门岗 gate", gate_id)
    return gate_id


def overloaded() -> ApiError:
    return ApiError(503, "overloaded", "识别繁忙,该帧未处理,请稍后重发 / all readers busy: frame shed, retry shortly",
                    headers={"Retry-After": "1"})


def image_error(exc: ImageError) -> ApiError:
    code = getattr(exc, "code", "image_invalid")
    status = 413 if code == "image_too_large" else 422
    return ApiError(status, code, f"图像无法使用 / unusable image: {exc}")


@api.route("POST", "/api/v1/gates/{gate_id}/frames", roles=("kiosk", "admin"), content_types=IMAGE_TYPES,
           query=DIRECTION, tag="gates",
           summary="One camera frame (JPEG body); answers the read and, once settled, the passage")
async def post_frame(request: web.Request) -> web.Response:
    gate_id = await _gate(request)
    data = await request.read()
    if not data:
        raise ApiError(400, "empty_body", "没有图像数据 / no image in the body")
    hub = request.app[keys.GATES]
    try:
        result = await hub.ingest(gate_id).submit(data, direction=request.query.get("direction", "in"),
                                                  token_id=request[keys.PRINCIPAL].token_id)
    except ImageError as exc:
        raise image_error(exc) from None
    except Overloaded:
        raise overloaded() from None
    return json_response(result.to_json())


@api.route("POST", "/api/v1/gates/{gate_id}/camera-events", roles=("kiosk", "admin"), tag="gates",
           content_types=("multipart/form-data",), status=201,
           summary="An ANPR camera's event (Hikvision EventNotificationAlert XML or Dahua TrafficJunction JSON, + "
                   "pictures): one passage, "
                   "the camera's read checked against cleangate's own")
async def camera_event(request: web.Request) -> web.Response:
    from gate_service.gates.camera import read_multipart, record_event

    gate_id = await _gate(request)
    if not request.content_type.startswith("multipart/"):
        raise ApiError(415, "unsupported_media_type", "应为 multipart/form-data / expected multipart/form-data")
    event = await read_multipart(request)
    principal = request[keys.PRINCIPAL]
    answer = await record_event(request.app, gate_id, event, principal.actor, principal.token_id,
                                principal.role)
    return json_response(answer, status=200 if answer.get("replayed") else 201)


@api.route("GET", "/api/v1/gates/{gate_id}/latest.jpg", roles=("kiosk", "admin", "ecology"), tag="gates",
           produces=("image/jpeg",), summary="The gate's most recent camera frame")
async def latest_frame(request: web.Request) -> web.Response:
    gate_id = await _gate(request)
    ingest = request.app[keys.GATES].gates.get(gate_id)
    if ingest is None or ingest.latest is None:
        raise ApiError(404, "no_frame", "该门岗尚无画面 / no frame received from this gate yet")
    at, data = ingest.latest
    return web.Response(body=data, content_type="image/jpeg",
                        headers={"Cache-Control": "no-store", "X-Frame-Time": at.isoformat()})


async def _open_socket(request: web.Request, gate_id: str, ws: web.WebSocketResponse) -> tuple[Any, Any, Any]:
    """Upgrade, and subscribe the socket to the gate's reads and passages (the caller unsubscribes, and
    calls ``_untrack``). The socket is closed (4401 token_revoked) as soon as its token is revoked."""
    await ws.prepare(request)
    ingest = request.app[keys.GATES].ingest(gate_id)
    watch = request.app.get(keys.TOKEN_WATCH)
    if watch is not None:
        watch.add(request[keys.PRINCIPAL], ws)

    async def send(message: dict[str, Any]) -> None:
        if not ws.closed:
            await ws.send_str(dumps(message))

    ingest.listeners.add(send)
    return ws, ingest, send


async def _untrack(request: web.Request, ws: web.WebSocketResponse) -> None:
    watch = request.app.get(keys.TOKEN_WATCH)
    if watch is not None:
        await watch.discard(request[keys.PRINCIPAL], ws)


@api.route("GET", WATCH, roles=("kiosk", "admin", "ecology"), tag="gates",
           summary="WebSocket for screens: the gate's reads and passages as JSON, no frames sent")
async def watch(request: web.Request) -> web.StreamResponse:
    gate_id = await _gate(request)
    ws, ingest, send = await _open_socket(request, gate_id, web.WebSocketResponse(heartbeat=20, protocols=(WS_PROTOCOL,)))
    try:
        await send({"type": "hello", "gate_id": gate_id, "watching": True})
        async for _ in ws:
            pass  # screens only listen
    finally:
        ingest.listeners.discard(send)
        await _untrack(request, ws)
    return ws


@api.route("GET", STREAM, roles=("kiosk", "admin"), query=DIRECTION, tag="gates",
           summary="WebSocket: binary JPEG frames in; JSON reads and passages out")
async def stream(request: web.Request) -> web.StreamResponse:
    gate_id = await _gate(request)
    direction = request.query.get("direction", "in")
    ws, ingest, send = await _open_socket(
        request, gate_id, web.WebSocketResponse(heartbeat=20, max_msg_size=request.app[keys.MAX_BODY],
                                              protocols=(WS_PROTOCOL,)))
    tasks: set[asyncio.Task[None]] = set()
    token_id = request[keys.PRINCIPAL].token_id
    try:
        await send({"type": "hello", "gate_id": gate_id, "direction": direction})
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                # Not awaited here: the socket keeps being read while a frame is being read, so a kiosk that
                # sends faster than the reader has its stale frames dropped by the gate's mailbox instead of
                # piling up in the socket. At most one frame per gate is read and one waits.
                task = asyncio.ensure_future(_frame(ingest, msg.data, direction, send, token_id))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            elif msg.type == WSMsgType.TEXT:
                with contextlib.suppress(ApiError):
                    command = loads_json(msg.data)
                    if isinstance(command, dict) and command.get("direction") in ("in", "out"):
                        direction = command["direction"]
                        await send({"type": "direction", "direction": direction})
                        continue
                await send({"type": "error", "error": {"code": "bad_message",
                                                       "message": "文本消息应为 {\"direction\": \"in\"|\"out\"} / "
                                                                  "text messages set the direction"}})
            elif msg.type == WSMsgType.ERROR:
                log.warning("websocket error at gate %s: %s", gate_id, ws.exception())
    finally:
        # A settled passage is already in the ledger whatever happens to the socket; let the frames in
        # flight finish so their passages are recorded too.
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        ingest.listeners.discard(send)
        await _untrack(request, ws)
    return ws


async def _frame(ingest: Any, data: bytes, direction: str, send: Any, token_id: int | None = None) -> None:
    try:
        result = await ingest.submit(data, direction=direction, token_id=token_id)
    except ImageError as exc:
        err = image_error(exc)
        await send({"type": "error", "error": {"code": err.code, "message": err.message}})
        return
    except Overloaded:
        err = overloaded()
        await send({"type": "shed", "error": {"code": err.code, "message": err.message}, "retry_after": 1})
        return
    except Exception:  # noqa: BLE001 - answer the kiosk, keep the socket
        log.exception("frame failed at gate %s", ingest.gate_id)
        await send({"type": "error", "error": {"code": "internal_error", "message": "帧处理失败 / frame failed"}})
        return
    if result.dropped or result.duplicate:
        await send({"type": "dropped" if result.dropped else "duplicate"})
