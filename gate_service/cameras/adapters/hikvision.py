"""Hikvision ANPR: ``EventNotificationAlert`` XML (ISAPI) beside the pictures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any
from xml.parsers import expat

from gate_service.cameras.adapters import MAX_DESCRIPTION, CameraEvent, EventPart
from gate_service.errors import ApiError
from plate_reader import plates

# Hikvision's plate colours → API.md's.
COLORS = {"blue": "blue", "yellow": "yellow", "white": "white", "black": "black", "green": "green",
          "yellowGreen": "yellow-green", "newEnergyGreen": "green", "newEnergyYellowGreen": "yellow-green",
          "other": "unknown", "unknown": "unknown"}
PREFER = ("detectionPicture.jpg", "detectionPicture", "vehiclePicture.jpg")


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
    if len(xml) > MAX_DESCRIPTION:
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
        color=COLORS.get(_text(root, "plateColor") or "unknown", "unknown"),
        direction=direction,
        confidence=float(confidence) / 100 if confidence and confidence.replace(".", "", 1).isdigit() else None,
        at=at,
        event_id=_text(root, "UUID") or _text(root, "uuid"),
        pictures=pictures,
        vendor="hikvision",
        prefer=PREFER,
    )


class Hikvision:
    vendor = "hikvision"

    def accepts(self, description: EventPart) -> bool:
        return "xml" in description.content_type or description.name.endswith(".xml") or \
            description.data.lstrip()[:1] == b"<" or description.data[:2] in (b"\xff\xfe", b"\xfe\xff")

    def parse(self, description: EventPart, pictures: dict[str, bytes]) -> CameraEvent:
        return parse_alert(description.data, pictures)


ADAPTER = Hikvision()
