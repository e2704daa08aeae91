"""Dahua ITC TrafficJunction events (JSON + pictures) beside Hikvision's: one passage per event, the camera's
read checked against cleangate's own, the event time read right (RealUTC; the local-time UTC field)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import aiohttp
import pytest

from gate_service import keys
from gate_service.cameras.adapters import EventPart, choose
from gate_service.cameras.adapters.dahua import parse_event
from tests.conftest import EASYPR

PHOTO = EASYPR / "shared_0001.jpg"  # 京A88731


def dahua_data(plate="京A88731", group=175706653, real_utc=1764548700, direction="Approach"):
    """The shape a Dahua ITC camera sends (fields as in its TrafficJunction events)."""
    return {
        "Action": "Pulse", "Class": "Traffic", "Code": "TrafficJunction", "CountInGroup": 2, "IndexInGroup": 1,
        "EventID": 516, "GroupID": group, "JunctionDirection": "Obverse", "Lane": 1,
        "LocaleTime": "2025-12-01 08:25:00", "Name": "TrafficJunction0",
        "Object": {"ObjectType": "Plate", "Text": plate, "Confidence": 93, "BoundingBox": [0, 0, 0, 0]},
        "RealUTC": real_utc, "UTC": real_utc + 8 * 3600, "UTCMS": 250,
        "TrafficCar": {"PlateNumber": plate, "PlateColor": "Blue", "PlateType": "Normal", "GroupID": group,
                       "MachineName": "ITC237-PW6M", "DrivingDirection": [direction, "Car come in", "Car go out"],
                       "Event": "TrafficJunction", "VehicleColor": "White"},
    }


def test_the_wrappers_dahua_uses_all_read_the_same():
    data = dahua_data()
    rpc = {"id": 1, "method": "client.notifyEventStream",
           "params": {"SID": 1, "eventList": [{"Action": "Pulse", "Code": "TrafficJunction", "Data": data}]}}
    attach = f"Code=TrafficJunction;action=Pulse;index=0;data={json.dumps(data, ensure_ascii=False)}"
    for body in (json.dumps(data), json.dumps(rpc), attach):
        part = EventPart("event.json", "text/plain", body.encode())
        assert choose(part).vendor == "dahua"
        event = choose(part).parse(part, {})
        assert (event.plate, event.color, event.direction, event.confidence) == ("京A88731", "blue", "in", 0.93)
        assert event.at == datetime(2025, 12, 1, 0, 25, 0, 250000, tzinfo=timezone.utc)
        assert event.event_id == "dahua:ITC237-PW6M:175706653"
    # Without RealUTC the UTC field is the camera's Beijing wall time (Dahua's quirk): same instant.
    old = {k: v for k, v in data.items() if k not in ("RealUTC", "LocaleTime")}
    assert parse_event(json.dumps(old).encode(), {}).at == datetime(2025, 12, 1, 0, 25, 0, 250000, tzinfo=timezone.utc)
    leaving = parse_event(json.dumps(dahua_data(direction="Leave")).encode(), {})
    assert leaving.direction == "out"
    none = parse_event(json.dumps(dahua_data(plate="无车牌")).encode(), {})
    assert none.plate is None
    xml = EventPart("anpr.xml", "application/xml", b"<EventNotificationAlert/>")
    assert choose(xml).vendor == "hikvision"


def _form(data, picture=True, name="TrafficJunction.jpg"):
    form = aiohttp.FormData()
    form.add_field("deviceId", "ITC237")  # a plain field some platforms add: not the event
    form.add_field("event", json.dumps(data, ensure_ascii=False).encode(), filename="event.json",
                   content_type="application/json")
    if picture:
        form.add_field(name, PHOTO.read_bytes(), filename=name, content_type="image/jpeg")
    return form


@pytest.fixture
async def gate(client, admin, token):
    if not PHOTO.exists():
        pytest.skip(f"EasyPR photos not found at {EASYPR}")
    await client.put("/api/v1/gates/g-dh", json={"name": "大华卡口", "zone_id": "city"}, headers=admin)
    await client.put("/api/v1/vehicles/京A88731", json={"plate_color": "blue", "emission_stage": 3,
                                                        "fuel_type": "diesel", "vehicle_class": "heavy_truck"},
                     headers=admin)
    return await token("kiosk", gate_id="g-dh")


async def test_a_dahua_event_is_one_passage_checked_by_our_reader(client, gate, app):
    # A minute ago (the shared path bounds event times against the server's clock).
    real = int(datetime.now(timezone.utc).timestamp()) - 60
    data = dahua_data(real_utc=real)
    data.pop("LocaleTime")
    resp = await client.post("/api/v1/gates/g-dh/camera-events", data=_form(data), headers=gate)
    assert resp.status == 201, await resp.text()
    answer = await resp.json()
    assert answer["plate"] == "京A88731" and answer["decision"] == "deny"
    # The event's second picture (same GroupID) is the same passage, not a second one.
    again = await client.post("/api/v1/gates/g-dh/camera-events", data=_form(data, name="plate.jpg"), headers=gate)
    assert (await again.json())["replayed"] is True
    rows = await app[keys.POOL].fetch("SELECT read, snapshot_ref, at, direction FROM passages WHERE gate_id = 'g-dh'")
    assert len(rows) == 1
    assert rows[0]["read"]["agree"] is True and rows[0]["read"]["chosen"] == "cleangate"
    assert rows[0]["read"]["camera"]["plate"] == "京A88731" and rows[0]["snapshot_ref"]
    assert rows[0]["at"] == datetime.fromtimestamp(real, timezone.utc).replace(microsecond=250000)


async def test_a_dahua_misread_is_overruled_and_kept(client, gate, app):
    resp = await client.post("/api/v1/gates/g-dh/camera-events", data=_form(dahua_data(plate="京A88781", group=2, real_utc=int(datetime.now(timezone.utc).timestamp()) - 30)),
                             headers=gate)
    assert resp.status == 201
    assert (await resp.json())["plate"] == "京A88731"
    row = await app[keys.POOL].fetchrow("SELECT read FROM passages WHERE gate_id = 'g-dh'")
    assert row["read"]["agree"] is False and row["read"]["camera"]["plate"] == "京A88781"


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"params": {"eventList": [{"Code": "VideoMotion"}]}}'])
async def test_broken_dahua_json_is_a_clear_422(client, gate, body):
    form = aiohttp.FormData()
    form.add_field("event", body, filename="event.json", content_type="application/json")
    resp = await client.post("/api/v1/gates/g-dh/camera-events", data=form, headers=gate)
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "bad_event"
