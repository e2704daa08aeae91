"""Registering gate cameras: the URL is stored, answered and audited redacted; roles and gates are checked."""

from __future__ import annotations

import json

from gate_service import keys


async def _gate(client, admin, gate="g1"):
    await client.put("/api/v1/enterprises/e1", headers=admin, json={
        "name": "企业", "industry": "steel", "county": "襄汾县", "zone_id": "xiangfen",
        "retrofit_completed_on": None, "grade": "A"})
    resp = await client.put(f"/api/v1/gates/{gate}", headers=admin,
                            json={"name": "门", "enterprise_id": "e1", "zone_id": "xiangfen"})
    assert resp.status in (200, 201)


async def test_camera_urls_are_kept_but_never_answered_or_audited_with_their_password(client, app, admin, token):
    await _gate(client, admin)
    await _gate(client, admin, "g2")
    body = {"rtsp_url": "rtsp://admin:Pa55w0rd@192.0.2.10:554/ch1", "roles": ["read"], "enabled": False}
    resp = await client.put("/api/v1/gates/g1/cameras/c1", headers=admin, json=body)
    assert resp.status == 201, await resp.text()
    answer = await resp.json()
    assert answer["rtsp_url"] == "rtsp://***@192.0.2.10:554/ch1" and answer["roles"] == ["read"]
    stored = await app[keys.POOL].fetchval("SELECT rtsp_url FROM gate_cameras WHERE id = 'c1'")
    assert stored == body["rtsp_url"]  # the service needs it to connect
    audit = await app[keys.POOL].fetch("SELECT detail FROM audit_log WHERE action = 'camera.put'")
    assert audit and all("Pa55w0rd" not in json.dumps(r["detail"]) for r in audit)

    # Sending back the redacted URL (an edit form) keeps the stored credentials.
    again = await client.put("/api/v1/gates/g1/cameras/c1", headers=admin,
                             json={**body, "rtsp_url": answer["rtsp_url"], "roles": ["read", "record"]})
    assert again.status == 200
    assert await app[keys.POOL].fetchval("SELECT rtsp_url FROM gate_cameras WHERE id = 'c1'") == body["rtsp_url"]
    wrong = await client.put("/api/v1/gates/g1/cameras/c1", headers=admin,
                             json={**body, "rtsp_url": "rtsp://***@192.0.2.99/other"})
    assert wrong.status == 422 and (await wrong.json())["error"]["code"] == "redacted_url"

    listed = await client.get("/api/v1/gates/g1/cameras", headers=admin)
    assert "Pa55w0rd" not in await listed.text()
    kiosk = await token("kiosk", gate_id="g1")
    assert (await client.get("/api/v1/gates/g1/cameras", headers=kiosk)).status == 200
    assert (await client.get("/api/v1/gates/g2/cameras", headers=kiosk)).status == 403
    assert (await client.put("/api/v1/gates/g1/cameras/c2", headers=kiosk, json=body)).status == 403

    moved = await client.put("/api/v1/gates/g2/cameras/c1", headers=admin, json=body)
    assert moved.status == 409 and (await moved.json())["error"]["code"] == "camera_of_another_gate"
    bad = await client.put("/api/v1/gates/g1/cameras/c3", headers=admin, json={**body, "roles": ["watch"]})
    assert bad.status in (400, 422)
    http = await client.put("/api/v1/gates/g1/cameras/c3", headers=admin, json={**body, "rtsp_url": "http://x/"})
    assert http.status in (400, 422)
    missing = await client.put("/api/v1/gates/nogate/cameras/c4", headers=admin, json=body)
    assert missing.status == 404

    gone = await client.delete("/api/v1/gates/g1/cameras/c1", headers=admin)
    assert gone.status == 200
    assert (await client.delete("/api/v1/gates/g1/cameras/c1", headers=admin)).status == 404
