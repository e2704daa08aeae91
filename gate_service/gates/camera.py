"""ANPR camera pushes: Hikvision's `EventNotificationAlert` (multipart XML + JPEGs) as one passage each.

Many gates already have an ANPR camera that reads plates itself and pushes one event per vehicle. Its read is a
second opinion, not the truth (DOMAIN.md): cleangate reads the picture with its own reader too, and records
which read it went with and whether the two agreed, so an auditor can see both.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from xml.parsers import expat

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from gate_service import keys
from gate_service.errors import ApiError
from gate_service.passages.judge import PassageInput, body_hash, check_moment
from plate_reader import plates

log = logging.getLogger(__name__)

MAX_XML = 256 * 1024
# A camera sends the XML and two or three pictures; more parts than this is not a camera.
MAX_PARTS = 16
# Hikvision's plate colours → API.md's.
_COLORS = {"blue": "blue", "yellow": "yellow", "white": "white", "black": "black", "green": "green",
           "yellowGreen": "yellow-green", "newEnergyGreen": "green", "newEnergyYellowGreen": "yellow-green",
           "other": "unknown", "unknown": "unknown"}
# A read of our own at least this sure wins over a camera that disagrees.
OWN_READ_WINS_AT = 0.8


@dataclass
class CameraEvent:
    plate: str | None
    color: str
    direction: str
    confidence: float | None
    at: datetime | None
    event_id: str | None
    pictures: dict[str, bytes]


def _text(root: ET.Element, name: str) -> str | None:
    # Hikvision namespaces its XML (isapi.org); match on the local name whatever the namespace.
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == name and el.text and el.text.strip():
            return el.text.strip()
    return None


class _Dtd(Exception):
    pass


def _refuse_dtd(xml: bytes) -> None:
    """No camera needs a DTD; refusing any rules out entity expansion. Asked of expat itself, after it has
    decoded the document: a byte search for "<!DOCTYPE" misses UTF-16 and every other encoding but ASCII's kin."""

    def refuse(*_args: Any) -> None:
        raise _Dtd()

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(xml, True)
    except _Dtd:
        raise ApiError(422, "bad_event", "事件 XML 不允许 DTD / DTDs are not accepted") from None
    except (expat.ExpatError, ValueError) as exc:
        raise ApiError(422, "bad_event", f"事件 XML 无法解析 / malformed event XML: {exc}") from None


def parse_alert(xml: bytes, pictures: dict[str, bytes]) -> CameraEvent:
    if len(xml) > MAX_XML:
        raise ApiError(413, "event_too_large", "事件 XML 过大 / event XML too large")
    _refuse_dtd(xml)
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ApiError(422, "bad_event", f"事件 XML 无法解析 / malformed event XML: {exc}") from None
    raw_plate = _text(root, "licensePlate")
    plate = None
    if raw_plate and raw_plate not in ("无车牌", "车牌", "unknown"):
        try:
            plate = plates.parse(raw_plate).text
        except plates.InvalidPlate:
            plate = None
    direction = {"forward": "in", "reverse": "out", "enter": "in", "exit": "out"}.get(
        (_text(root, "direction") or "forward").lower(), "in")
    confidence = _text(root, "confidenceLevel")
    when = _text(root, "dateTime")
    at = None
    if when:
        try:
            at = datetime.fromisoformat(when.replace("Z", "+00:00"))
            at = at if at.tzinfo else None
        except ValueError:
            at = None
    return CameraEvent(
        plate=plate,
        color=_COLORS.get(_text(root, "plateColor") or "unknown", "unknown"),
        direction=direction,
        confidence=float(confidence) / 100 if confidence and confidence.replace(".", "", 1).isdigit() else None,
        at=at,
        event_id=_text(root, "UUID") or _text(root, "uuid"),
        pictures=pictures,
    )


async def read_multipart(request: web.Request) -> CameraEvent:
    # The whole upload counts against the body limit: aiohttp caps request.read(), not a streamed multipart.
    limit = request.app.get(keys.MAX_BODY) or 8 * 1024 * 1024
    total = 0
    xml = None
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
            data = b"".join(chunks)
            ctype = part.headers.get("Content-Type", "")
            if xml is None and ("xml" in ctype or name.endswith(".xml") or data.lstrip()[:1] == b"<"
                                or data[:2] in (b"\xff\xfe", b"\xfe\xff")):
                xml = data
            elif data[:2] == b"\xff\xd8":
                pictures[name] = data
    except (ValueError, AssertionError, HttpProcessingError, web.HTTPException) as exc:
        if isinstance(exc, web.HTTPException) and exc.status == 413:
            raise
        raise ApiError(422, "bad_event", f"multipart 格式错误 / malformed multipart upload: {exc}") from None
    if xml is None:
        raise ApiError(422, "bad_event", "缺少 EventNotificationAlert XML / no event XML in the upload")
    return parse_alert(xml, pictures)


def _best_picture(event: CameraEvent) -> bytes | None:
    # The scene picture shows the whole vehicle (what the national record asks for); else any.
    for key in ("detectionPicture.jpg", "detectionPicture", "vehiclePicture.jpg"):
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
