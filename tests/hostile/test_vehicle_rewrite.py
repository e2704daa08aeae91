"""Issue 15 item 1: a kiosk registers unknown vehicles only; changing a known one is audited with before/after."""

from __future__ import annotations

import json

from gate_service import keys

OLD_TRUCK = {"plate_color": "yellow", "emission_stage": 3, "fuel_type": "diesel", "vehicle_class": "heavy_truck"}
AS_ELECTRIC = {"plate_color": "yellow-green", "fuel_type": "electric", "vehicle_class": "heavy_truck"}


async def _world(client, admin):  # type: ignore[no-untyped-def]
    await client.put("/api/v1/enterprises/e1", json={"name": "某钢铁", "industry": "steel", "zone_id": "xiangfen"},
                     headers=admin)
    await client.put("/api/v1/gates/g1", json={"name": "1号门", "enterprise_id": "e1", "zone_id": "xiangfen"},
                     headers=admin)
    await client.put("/api/v1/gates/city-1", json={"name": "市区检查站", "zone_id": "city"}, headers=admin)


async def test_kiosk_cannot_rewrite_a_known_vehicle(client, admin, token, app) -> None:  # type: ignore[no-untyped-def]
    await _world(client, admin)
    assert (await client.put("/api/v1/vehicles/晋LC3333", json=OLD_TRUCK, headers=admin)).status == 201
    kiosk = await token("kiosk", gate_id="g1")
    resp = await client.put("/api/v1/vehicles/晋LC3333", json=AS_ELECTRIC, headers=kiosk)
    assert resp.status == 409, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "vehicle_exists" and error["field"] == "plate"
    row = await (await client.get("/api/v1/vehicles/晋LC3333", headers=admin)).json()
    assert row["fuel_type"] == "diesel" and row["emission_stage"] == 3
    # The city checkpoint still turns the 国三 diesel truck away.
    city = await token("kiosk", gate_id="city-1")
    passage = await client.post("/api/v1/gates/city-1/passages", json={"plate": "晋LC3333", "direction": "in"},
                                headers=city)
    assert (await passage.json())["decision"] == "deny"
    # The refused attempt is in the audit log, so an auditor sees who tried.
    refused = await app[keys.POOL].fetchrow(
        "SELECT role, detail FROM audit_log WHERE action = 'vehicle.put_refused' AND target = '晋LC3333'")
    assert refused is not None and refused["role"] == "kiosk"


async def test_kiosk_registers_an_unknown_vehicle(client, admin, token, app) -> None:  # type: ignore[no-untyped-def]
    await _world(client, admin)
    kiosk = await token("kiosk", gate_id="g1")
    resp = await client.put("/api/v1/vehicles/晋LN7777", json=OLD_TRUCK, headers=kiosk)
    assert resp.status == 201, await resp.text()
    detail = await app[keys.POOL].fetchval(
        "SELECT detail FROM audit_log WHERE action = 'vehicle.put' AND target = '晋LN7777'")
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert detail["before"] is None and detail["after"]["fuel_type"] == "diesel"
    # Sending the same registration again is not an update either.
    again = await client.put("/api/v1/vehicles/晋LN7777", json=OLD_TRUCK, headers=kiosk)
    assert again.status == 409


async def test_admin_change_is_audited_with_before_and_after(client, admin, app) -> None:  # type: ignore[no-untyped-def]
    assert (await client.put("/api/v1/vehicles/晋LC3333", json=OLD_TRUCK, headers=admin)).status == 201
    resp = await client.put("/api/v1/vehicles/晋LC3333", json=AS_ELECTRIC, headers=admin)
    assert resp.status == 200
    rows = await app[keys.POOL].fetch(
        "SELECT detail FROM audit_log WHERE action = 'vehicle.put' AND target = '晋LC3333' ORDER BY id")
    details = [json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"] for r in rows]
    assert details[-1]["before"]["fuel_type"] == "diesel" and details[-1]["before"]["emission_stage"] == 3
    assert details[-1]["after"]["fuel_type"] == "electric" and details[-1]["after"]["emission_stage"] is None
