"""ANPR camera pushes (Hikvision ``EventNotificationAlert`` XML, Dahua ``TrafficJunction`` JSON, each with its
pictures) as one passage each.

Many gates already have an ANPR camera that reads plates itself and pushes one event per vehicle. Its read is a
second opinion, not the truth (DOMAIN.md): cleangate reads the picture with its own reader too, and records
which read it went with and whether the two agreed, so an auditor can see both. What each vendor sends is
parsed by its adapter (``gate_service.cameras.adapters``); this module is the shared path after that: the
upload's limits, the event-time bounds, our own read, one passage per event.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from gate_service import keys
from gate_service.cameras.adapters import CameraEvent, EventPart, choose, describes
from gate_service.cameras.adapters.hikvision import parse_alert
from gate_service.errors import ApiError
from gate_service.passages.judge import PassageInput, body_hash, check_moment

log = logging.getLogger(__name__)

__all__ = ["CameraEvent", "parse_alert", "read_multipart", "record_event"]

# A camera sends the description and two or three pictures; more parts than this is not a camera.
MAX_PARTS = 16
# A read of our own at least this sure wins over a camera that disagrees.
OWN_READ_WINS_AT = 0.8


async def read_multipart(request: web.Request) -> CameraEvent:
    # The whole upload counts against the body limit: aiohttp caps request.read(), not a streamed multipart.
    limit = request.app.get(keys.MAX_BODY) or 8 * 1024 * 1024
    total = 0
    description: EventPart | None = None
    pictures: dict[str, bytes] = {}
    try:
        reader = await request.multipart()
        parts = 0
        async for part in reader:
            parts += 1
            if parts > MAX_PARTS:
                raise ApiError(413, "event_too_large", f"事件最多 {MAX_PARTS} 个部分 / at most {MAX_PARTS} parts",
                               limit_parts=MAX_PARTS)
            if not isinstance(part, BodyPartReader):
                continue  # a nested multipart: no camera sends one
            name = part.name or part.filename or ""
            chunks = []
            while chunk := await part.read_chunk():
                total += len(chunk)
                if total > limit:
                    raise ApiError(413, "event_too_large", f"事件总大小超过 {limit} 字节 / the upload is larger "
                                   f"than {limit} bytes", limit_bytes=limit)
                chunks.append(chunk)
            item = EventPart(name, part.headers.get("Content-Type", ""), b"".join(chunks))
            if item.is_picture:
                pictures[name] = item.data
            elif description is None and describes(item):
                description = item  # other form fields (a device id, a channel) are not the event
    except (ValueError, AssertionError, HttpProcessingError, web.HTTPException) as exc:
        if isinstance(exc, web.HTTPException) and exc.status == 413:
            raise
        raise ApiError(422, "bad_event", f"multipart 格式错误 / malformed multipart upload: {exc}") from None
    if description is None:
        raise ApiError(422, "bad_event", "缺少事件描述(XML 或 JSON)/ no event description (XML or JSON) in the upload")
    return choose(description).parse(description, pictures)


def _best_picture(event: CameraEvent) -> bytes | None:
    # The scene picture shows the whole vehicle (what the national record asks for); else any.
    for key in event.prefer:
        if key in event.pictures:
            return event.pictures[key]
    return next(iter(event.pictures.values()), None)


async def record_event(app: web.Application, gate_id: str, event: CameraEvent, actor: str,
                       token_id: int | None, role: str = "kiosk") -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    if event.at is not None:
        # The same bounds as a manual passage: a camera with a wrong clock must not date a passage 2001.
        check_moment(event.at, role=role, now=now, field="dateTime")
    hub = app[keys.GATES]
    picture = _best_picture(event)
    own = None
    if picture is not None:
        try:
            _, _, own = await hub.pool.read(picture)
        except Exception as exc:  # noqa: BLE001 - a bad picture leaves the camera's read to stand
            log.warning("camera picture unreadable at %s: %s", gate_id, exc)
    own_plate = own.plate if own is not None and own.plate else None
    if own_plate and (own.confidence >= OWN_READ_WINS_AT or event.plate is None):
        plate, chosen, color = own_plate, "cleangate", own.color
    elif event.plate:
        plate, chosen, color = event.plate, "camera", event.color
    else:
        raise ApiError(422, "no_plate", "相机与本系统均未识别出车牌 / neither the camera nor cleangate read a plate")
    read = {
        "text": plate,
        "color": color,
        "confidence": round(own.confidence, 4) if chosen == "cleangate" and own else event.confidence,
        "frames": 1,
        "chosen": chosen,
        "camera": {"plate": event.plate, "color": event.color, "confidence": event.confidence},
        "cleangate": {"plate": own_plate, "color": own.color if own else None,
                      "confidence": round(own.confidence, 4) if own else None},
        "agree": bool(event.plate and own_plate and event.plate == own_plate),
    }
    at = event.at if event.at is not None else now
    snapshot_ref = None
    store = app.get(keys.MEDIA_STORE)
    if store is not None and picture is not None:
        from uuid import uuid4

        from gate_service.video.storage import media_key

        snapshot_ref = (await store.put(media_key("snapshots", gate_id, at, f"camera-{uuid4().hex[:12]}.jpg"),
                                        picture)).key
    item = PassageInput(
        gate_id=gate_id, plate=plate, direction=event.direction, at=at, source="camera",
        plate_color=color if color != "unknown" else None, read=read, snapshot_ref=snapshot_ref,
        client_ref=f"camera:{event.event_id}" if event.event_id else None,
        # A camera re-sending its event sends the same XML; another event under the same id is not a retry.
        body_hash=body_hash([event.plate, event.color, event.direction, event.confidence,
                             event.at.isoformat() if event.at else None]) if event.event_id else None,
    )
    judged = await app[keys.JUDGE].record(item, token_id=token_id, actor=actor)
    answer = judged.response()
    await hub.broadcast(gate_id, {"type": "passage", "passage": answer})
    return answer
