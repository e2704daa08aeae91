"""Issue 15 items 7 and 12: camera events get the manual passages' moment checks, XML in any encoding expands
no entity, and an upload has a total size cap. No photo needed: the camera's own read stands."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import aiohttp
import pytest

from gate_service import keys

ALERT = """<?xml version="1.0" encoding="{encoding}"?>{doctype}
<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
  <dateTime>{at}</dateTime><eventType>ANPR</eventType><UUID>{uuid}</UUID>
  <ANPR><licensePlate>{plate}</licensePlate><confidenceLevel>93</confidenceLevel>
    <plateColor>blue</plateColor><direction>forward</direction></ANPR>
</EventNotificationAlert>"""


def _xml(*, at: datetime | None = None, plate: str = "京A88731", uuid: str = "ev-1", encoding: str = "UTF-8",
         doctype: str = "") -> bytes:
    at = at or datetime.now(timezone.utc) - timedelta(seconds=5)
    text = ALERT.format(at=at.isoformat(), plate=plate, uuid=uuid, encoding=encoding, doctype=doctype)
    return text.encode(encoding.lower())


def _form(xml: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("anpr.xml", xml, filename="anpr.xml", content_type="application/xml")
    return form


@pytest.fixture
async def gate(client, admin, token):  # type: ignore[no-untyped-def]
    await client.put("/api/v1/gates/g-cam", json={"name": "卡口", "zone_id": "city"}, headers=admin)
    await client.put("/api/v1/vehicles/京A88731", json={"plate_color": "blue", "emission_stage": 6,
                                                        "fuel_type": "diesel", "vehicle_class": "logistics"},
                     headers=admin)
    return await token("kiosk", gate_id="g-cam")


async def _post(client, gate, xml: bytes):  # type: ignore[no-untyped-def]
    return await client.post("/api/v1/gates/g-cam/camera-events", data=_form(xml), headers=gate)


async def test_a_recent_event_is_recorded_at_its_own_time(client, gate, app) -> None:  # type: ignore[no-untyped-def]
    at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=3)
    resp = await _post(client, gate, _xml(at=at))
    assert resp.status == 201, await resp.text()
    assert await app[keys.POOL].fetchval("SELECT at FROM passages") == at


@pytest.mark.parametrize(("at", "code"), [
    (datetime(2001, 5, 1, 8, 0, tzinfo=timezone.utc), "time_too_old"),
    (datetime.now(timezone.utc) - timedelta(days=8), "time_too_old"),
    (datetime.now(timezone.utc) + timedelta(days=1), "time_in_future"),
])
async def test_event_times_get_the_manual_moment_checks(client, gate, app, at, code) -> None:  # type: ignore[no-untyped-def]
    resp = await _post(client, gate, _xml(at=at))
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == code and error["field"] == "dateTime"
    assert await app[keys.POOL].fetchval("SELECT count(*) FROM passages") == 0


@pytest.mark.parametrize("encoding", ["UTF-16", "UTF-16LE", "UTF-8"])
async def test_no_entity_is_expanded_in_any_encoding(client, gate, app, encoding) -> None:  # type: ignore[no-untyped-def]
    doctype = '\n<!DOCTYPE EventNotificationAlert [<!ENTITY p "京A88731">]>'
    xml = _xml(plate="&p;", encoding=encoding, doctype=doctype)
    if encoding == "UTF-16LE":
        xml = b"\xff\xfe" + xml  # a BOM, as Windows tools write it
    resp = await _post(client, gate, xml)
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"]["code"] == "bad_event"
    assert await app[keys.POOL].fetchval("SELECT count(*) FROM passages") == 0


async def test_utf16_without_a_doctype_is_read(client, gate) -> None:  # type: ignore[no-untyped-def]
    resp = await _post(client, gate, _xml(encoding="UTF-16"))
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["plate"] == "京A88731"


async def test_an_upload_has_a_total_size_cap(client, gate, app) -> None:  # type: ignore[no-untyped-def]
    form = _form(_xml())
    # Many parts each under any per-part limit, together far above the body limit.
    for i in range(40):
        form.add_field(f"picture{i}.jpg", b"\xff\xd8" + b"\0" * (512 * 1024), filename=f"picture{i}.jpg",
                       content_type="image/jpeg")
    resp = await client.post("/api/v1/gates/g-cam/camera-events", data=form, headers=gate)
    assert resp.status == 413, await resp.text()
    assert (await resp.json())["error"]["code"] == "event_too_large"
    assert await app[keys.POOL].fetchval("SELECT count(*) FROM passages") == 0
