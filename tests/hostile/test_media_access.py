"""Media a client can reach only through the server's own records: vehicle documents have server-made keys (a
client-supplied extra.document_ref is ignored), media keys are random, and the police read no pictures or video."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from gate_service import keys

SECRET_VIDEO = b"\xff\xd8\xff" + b"another gate's video, or a snapshot of it" * 10


def _jpeg(seed: int = 0) -> bytes:
    image = np.full((16, 16, 3), seed % 255, np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


@pytest.fixture
async def gates(client, admin, token):
    for gate in ("g-east", "g-west"):
        resp = await client.put(f"/api/v1/gates/{gate}", json={"name": gate, "zone_id": "city"}, headers=admin)
        assert resp.status == 201
    return {"east": await token("kiosk", gate_id="g-east"), "west": await token("kiosk", gate_id="g-west")}


async def test_a_document_ref_written_by_a_client_is_never_served(client, app, gates):
    # Media of the west gate, as the recorder or the tracker would have stored it.
    await app[keys.MEDIA_STORE].put("video/g-west/2026/12/01/120000Z-1.mp4", SECRET_VIDEO)
    resp = await client.put("/api/v1/vehicles/晋L55555", headers=gates["east"], json={
        "fuel_type": "diesel", "vehicle_class": "heavy_truck", "emission_stage": 6,
        "extra": {"document_ref": "video/g-west/2026/12/01/120000Z-1.mp4"}})
    # Refused by the registry (reserved_field), or, were it stored, never read by the document route.
    assert resp.status in (200, 201, 422)
    if resp.status == 422:
        assert (await resp.json())["error"]["code"] == "reserved_field"
        await client.put("/api/v1/vehicles/晋L55555", headers=gates["east"], json={
            "fuel_type": "diesel", "vehicle_class": "heavy_truck", "emission_stage": 6})
        await app[keys.POOL].execute(  # as a registry import or an older release could have left it
            """UPDATE vehicles SET extra = extra || '{"document_ref": "video/g-west/2026/12/01/120000Z-1.mp4"}'
               WHERE plate = '晋L55555'""")
    got = await client.get("/api/v1/console/vehicles/晋L55555/document", headers=gates["east"])
    assert got.status == 404
    assert (await got.json())["error"]["code"] == "no_document"


async def test_an_uploaded_document_is_served_by_its_server_made_key(client, app, gates, admin):
    await client.put("/api/v1/vehicles/晋L66666", headers=gates["east"],
                     json={"fuel_type": "electric", "vehicle_class": "heavy_truck"})
    photo = _jpeg(1)
    up = await client.post("/api/v1/console/vehicles/晋L66666/document", data=photo,
                           headers={**gates["east"], "Content-Type": "image/jpeg"})
    assert up.status == 201
    doc = await up.json()
    assert doc["document_ref"].startswith("documents/")
    assert re.search(r"[0-9a-f]{32}", doc["document_ref"]), doc["document_ref"]  # 128 random bits
    # A later registry write that names another key changes nothing of what is served.
    await app[keys.MEDIA_STORE].put("video/g-west/x.mp4", SECRET_VIDEO)
    resp = await client.put("/api/v1/vehicles/晋L66666", headers=admin, json={
        "fuel_type": "electric", "vehicle_class": "heavy_truck", "extra": {"document_ref": "video/g-west/x.mp4"}})
    assert resp.status in (200, 422)
    await app[keys.POOL].execute(
        """UPDATE vehicles SET extra = extra || '{"document_ref": "video/g-west/x.mp4"}' WHERE plate = '晋L66666'""")
    for headers in (gates["west"], admin):
        got = await client.get("/api/v1/console/vehicles/晋L66666/document", headers=headers)
        assert got.status == 200 and await got.read() == photo
    # A second upload replaces the first.
    again = await client.post("/api/v1/console/vehicles/晋L66666/document", data=_jpeg(2),
                              headers={**admin, "Content-Type": "image/jpeg"})
    assert (await again.json())["document_ref"] != doc["document_ref"]
    got = await client.get("/api/v1/console/vehicles/晋L66666/document", headers=admin)
    assert await got.read() == _jpeg(2)


def test_media_keys_carry_128_random_bits():
    from datetime import datetime, timezone

    from gate_service.video.storage import media_key

    at = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    first, second = media_key("video", "g1", at, "20261201T120000Z-7.mp4"), media_key("video", "g1", at,
                                                                                   "20261201T120000Z-7.mp4")
    assert first != second
    for key in (first, second):
        assert key.startswith("video/g1/2026/12/01/20261201T120000Z-7-") and key.endswith(".mp4")
        assert re.fullmatch(r"[0-9a-f]{32}", key.rsplit("-", 1)[1].removesuffix(".mp4"))


def test_no_route_serving_pictures_or_video_admits_the_police(app):
    media = [ep for ep in app[keys.API].endpoints
             if any(p.startswith(("image/", "video/")) for p in ep.produces) or "/video/" in ep.path]
    assert len(media) >= 6, [ep.path for ep in media]  # snapshot, document, latest.jpg, clip, segments...
    for ep in media:
        assert "police" not in ep.roles, f"{ep.method} {ep.path} lets the police read pictures or video"


async def test_the_police_cannot_read_a_vehicle_document(client, token, gates):
    police = await token("police")
    resp = await client.get("/api/v1/console/vehicles/晋L66666/document", headers=police)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden_role"
