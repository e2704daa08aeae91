"""Hikvision-style ANPR camera events: the camera's read is checked against cleangate's own."""

from datetime import datetime, timedelta, timezone

import aiohttp
import pytest

from gate_service import keys
from tests.conftest import EASYPR

PHOTO = EASYPR / "shared_0001.jpg"  # 京A88731
pytestmark = pytest.mark.skipif(not PHOTO.exists(), reason=f"EasyPR photos not found at {EASYPR}")

ALERT = """<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
  <ipAddress>192.0.2.10</ipAddress><channelID>1</channelID>
  <dateTime>{at}</dateTime>
  <eventType>ANPR</eventType><UUID>{uuid}</UUID>
  <ANPR><country>CHN</country><licensePlate>{plate}</licensePlate><confidenceLevel>93</confidenceLevel>
    <plateColor>blue</plateColor><direction>forward</direction><vehicleType>vehicle</vehicleType></ANPR>
</EventNotificationAlert>"""


# Camera times get the manual passages' bounds (at most 7 days late), so the events are from a minute ago;
# one moment for the module, so that a re-sent event is the same event.
RECENT = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()


def _form(plate, uuid, picture=True):
    form = aiohttp.FormData()
    form.add_field("anpr.xml", ALERT.format(plate=plate, uuid=uuid, at=RECENT).encode(), filename="anpr.xml",
                   content_type="application/xml")
    if picture:
        form.add_field("detectionPicture.jpg", PHOTO.read_bytes(), filename="detectionPicture.jpg",
                       content_type="image/jpeg")
    return form


@pytest.fixture
async def gate(client, admin, token):
    await client.put("/api/v1/gates/g-cam", json={"name": "卡口", "zone_id": "city"}, headers=admin)
    await client.put("/api/v1/vehicles/京A88731", json={"plate_color": "blue", "emission_stage": 3,
                                                        "fuel_type": "diesel", "vehicle_class": "heavy_truck"},
                     headers=admin)
    return await token("kiosk", gate_id="g-cam")


async def test_camera_and_reader_agree(client, gate, app):
    resp = await client.post("/api/v1/gates/g-cam/camera-events", data=_form("京A88731", "ev-1"), headers=gate)
    assert resp.status == 201, await resp.text()
    answer = await resp.json()
    assert answer["plate"] == "京A88731" and answer["decision"] == "deny"
    row = await app[keys.POOL].fetchrow("SELECT read, snapshot_ref FROM passages")
    assert row["read"]["agree"] is True and row["read"]["chosen"] == "cleangate"
    assert row["snapshot_ref"]
    again = await client.post("/api/v1/gates/g-cam/camera-events", data=_form("京A88731", "ev-1"), headers=gate)
    assert (await again.json())["replayed"] is True  # the camera re-sent the same event


async def test_a_camera_misread_is_overruled_and_recorded(client, gate, app):
    resp = await client.post("/api/v1/gates/g-cam/camera-events", data=_form("京A88781", "ev-2"), headers=gate)
    answer = await resp.json()
    assert answer["plate"] == "京A88731"
    row = await app[keys.POOL].fetchrow("SELECT read FROM passages")
    assert row["read"]["agree"] is False and row["read"]["camera"]["plate"] == "京A88781"


async def test_without_a_picture_the_camera_read_stands(client, gate):
    resp = await client.post("/api/v1/gates/g-cam/camera-events", data=_form("京A88731", "ev-3", picture=False),
                             headers=gate)
    assert resp.status == 201
    assert (await resp.json())["plate"] == "京A88731"


@pytest.mark.parametrize("xml", [b"<not-closed", b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'])
async def test_hostile_or_broken_xml_is_422(client, gate, xml):
    form = aiohttp.FormData()
    form.add_field("anpr.xml", xml, filename="anpr.xml", content_type="application/xml")
    resp = await client.post("/api/v1/gates/g-cam/camera-events", data=form, headers=gate)
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "bad_event"


async def test_malformed_multipart_is_422(client, gate):
    resp = await client.post("/api/v1/gates/g-cam/camera-events", data=b"--x\r\nnonsense",
                             headers={**gate, "Content-Type": "multipart/form-data"})
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "bad_event"
