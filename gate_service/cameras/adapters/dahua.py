"""Dahua ITC (traffic / access cameras): ``TrafficJunction`` events, JSON beside the pictures.

Dahua cameras deliver the same event in a few wrappers, all accepted here:

- the event's ``Data`` object itself (HTTP upload / 平台推送),
- a ``client.notifyEventStream`` JSON-RPC message with an ``eventList`` (the first TrafficJunction in it),
- the ``eventManager.cgi?action=attach`` text part ``Code=TrafficJunction;action=Pulse;index=0;data={...}``.

Times: ``RealUTC`` (+ ``UTCMS``) is the true UTC instant; the older ``UTC`` field holds the camera's local wall
time counted as if it were UTC (a Dahua quirk), so without ``RealUTC`` it is read as Beijing time, like
``LocaleTime``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from gate_service.cameras.adapters import MAX_DESCRIPTION, CameraEvent, EventPart
from gate_service.errors import ApiError
from plate_reader import plates

BEIJING = timezone(timedelta(hours=8))
EVENT_CODES = ("TrafficJunction", "TrafficTollGate", "TrafficParking", "TrafficManualSnap")
COLORS = {"blue": "blue", "yellow": "yellow", "white": "white", "black": "black", "green": "green",
          "yellowgreen": "yellow-green", "greenyellow": "yellow-green", "newenergy": "green",
          "shadowgreen": "green", "unknown": "unknown", "other": "unknown"}
PREFER = ("TrafficJunction.jpg", "global.jpg", "image1.jpg", "picture.jpg")
NO_PLATE = ("", "无车牌", "未识别", "unknown", "Unknown")


def _data(description: bytes) -> dict[str, Any]:
    if len(description) > MAX_DESCRIPTION:
        raise ApiError(413, "event_too_large", "事件描述过大 / event description too large")
    text = description.decode("utf-8", "replace").strip()
    if text.startswith("Code=") and "data=" in text:
        text = text.split("data=", 1)[1].strip()
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(422, "bad_event", f"事件 JSON 无法解析 / malformed event JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(422, "bad_event", "事件 JSON 应为对象 / the event JSON must be an object")
    events = (body.get("params") or {}).get("eventList") if isinstance(body.get("params"), dict) else None
    if isinstance(events, list):
        for event in events:
            if isinstance(event, dict) and isinstance(event.get("Data"), dict) and \
                    str(event.get("Code", "")).startswith(EVENT_CODES):
                return event["Data"]
        raise ApiError(422, "bad_event", "事件列表中没有车辆事件 / no traffic event in the event list")
    if isinstance(body.get("Data"), dict):
        return body["Data"]
    return body


def _plate(data: dict[str, Any]) -> str | None:
    car = data.get("TrafficCar") if isinstance(data.get("TrafficCar"), dict) else {}
    obj = data.get("Object") if isinstance(data.get("Object"), dict) else {}
    raw = car.get("PlateNumber") or (obj.get("Text") if obj.get("ObjectType") in (None, "Plate") else None)
    if not isinstance(raw, str) or raw.strip() in NO_PLATE:
        return None
    try:
        return plates.parse(raw.strip()).text
    except plates.InvalidPlate:
        return None


def _at(data: dict[str, Any]) -> datetime | None:
    ms = data.get("UTCMS") if isinstance(data.get("UTCMS"), (int, float)) else 0
    real = data.get("RealUTC")
    if isinstance(real, (int, float)) and real > 0:
        return datetime.fromtimestamp(real, timezone.utc) + timedelta(milliseconds=ms)
    local = data.get("LocaleTime")
    if isinstance(local, str):
        try:
            return datetime.strptime(local, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING) + timedelta(milliseconds=ms)
        except ValueError:
            pass
    utc = data.get("UTC")
    if isinstance(utc, (int, float)) and utc > 0:
        wall = datetime.fromtimestamp(utc, timezone.utc).replace(tzinfo=None)
        return wall.replace(tzinfo=BEIJING) + timedelta(milliseconds=ms)
    return None


def _direction(data: dict[str, Any]) -> str:
    car = data.get("TrafficCar") if isinstance(data.get("TrafficCar"), dict) else {}
    driving = car.get("DrivingDirection")
    if isinstance(driving, list) and driving and isinstance(driving[0], str):
        return "out" if driving[0].lower() == "leave" else "in"
    return "out" if str(data.get("JunctionDirection", "")).lower() == "reverse" else "in"


def _confidence(data: dict[str, Any]) -> float | None:
    obj = data.get("Object") if isinstance(data.get("Object"), dict) else {}
    value = obj.get("Confidence")
    if not isinstance(value, (int, float)) or value <= 0:
        return None
    # Plate confidence is 0-100 on ITC firmware, 0-255 on some older ones.
    return round(min(1.0, value / (255 if value > 100 else 100)), 4)


def parse_event(description: bytes, pictures: dict[str, bytes]) -> CameraEvent:
    data = _data(description)
    car = data.get("TrafficCar") if isinstance(data.get("TrafficCar"), dict) else {}
    color = str(car.get("PlateColor") or "unknown").replace(" ", "").lower()
    group = data.get("GroupID") or car.get("GroupID")
    machine = car.get("MachineName") or data.get("MachineName") or ""
    # The pictures of one event share its GroupID (a camera may push them one by one): one passage per group.
    event_id = f"{machine}:{group}" if group is not None else (
        f"{machine}:{data['EventID']}" if data.get("EventID") is not None else None)
    return CameraEvent(plate=_plate(data), color=COLORS.get(color, "unknown"), direction=_direction(data),
                       confidence=_confidence(data), at=_at(data), event_id=f"dahua:{event_id}" if event_id else None,
                       pictures=pictures, vendor="dahua", prefer=PREFER)


class Dahua:
    vendor = "dahua"

    def accepts(self, description: EventPart) -> bool:
        head = description.data.lstrip()[:5]
        return "json" in description.content_type or head[:1] == b"{" or head == b"Code="

    def parse(self, description: EventPart, pictures: dict[str, bytes]) -> CameraEvent:
        return parse_event(description.data, pictures)


ADAPTER = Dahua()
