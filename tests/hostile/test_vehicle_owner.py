"""Issue 15 item 1, the rest of it: changing a known vehicle is the admin's or the owning enterprise's.

A vehicle's owner (``owner_enterprise_id``) is the enterprise that registered it — itself, or by a guard at one
of its gates — or whom the admin names. Another enterprise, or an enterprise on a vehicle nobody owns (the
national record the admin imported), is refused and the attempt audited."""

from __future__ import annotations

import json

from gate_service import keys

OLD_TRUCK = {"plate_color": "yellow", "emission_stage": 3, "fuel_type": "diesel", "vehicle_class": "heavy_truck"}
RETROFIT = {"plate_color": "yellow", "emission_stage": 6, "fuel_type": "diesel", "vehicle_class": "heavy_truck"}


async def _world(client, admin):  # type: ignore[no-untyped-def]
    for ent in ("e1", "e2"):
        resp = await client.put(f"/api/v1/enterprises/{ent}", headers=admin,
                                json={"name": f"{ent}钢铁", "industry": "steel", "zone_id": "xiangfen"})
        assert resp.status in (200, 201)
    resp = await client.put("/api/v1/gates/g1", json={"name": "1号门", "enterprise_id": "e1", "zone_id": "xiangfen"},
                            headers=admin)
    assert resp.status in (200, 201)


async def _details(app, plate):  # type: ignore[no-untyped-def]
    rows = await app[keys.POOL].fetch(
        "SELECT action, role, detail FROM audit_log WHERE target = $1 AND action LIKE 'vehicle.%' ORDER BY id", plate)
    return [(r["action"], r["role"], json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"])
            for r in rows]


async def test_an_enterprise_registers_and_changes_its_own_vehicle(client, admin, token, app):  # type: ignore[no-untyped-def]
    await _world(client, admin)
    e1 = await token("enterprise", enterprise_id="e1")
    created = await client.put("/api/v1/vehicles/晋LC3333", json=OLD_TRUCK, headers=e1)
    assert created.status == 201, await created.text()
    assert (await created.json())["owner_enterprise_id"] == "e1"
    changed = await client.put("/api/v1/vehicles/晋LC3333", json=RETROFIT, headers=e1)
    assert changed.status == 200, await changed.text()
    body = await changed.json()
    assert body["emission_stage"] == 6 and body["owner_enterprise_id"] == "e1"
    action, role, detail = (await _details(app, "晋LC3333"))[-1]
    assert (action, role) == ("vehicle.put", "enterprise")
    assert detail["before"]["emission_stage"] == 3 and detail["after"]["emission_stage"] == 6
    # It reads its own vehicle, and lists it.
    assert (await client.get("/api/v1/vehicles/晋LC3333", headers=e1)).status == 200
    listed = await (await client.get("/api/v1/vehicles", headers=e1)).json()
    assert [v["plate"] for v in listed["vehicles"]] == ["晋LC3333"]


async def test_another_enterprise_cannot_change_or_read_it(client, admin, token, app):  # type: ignore[no-untyped-def]
    await _world(client, admin)
    e1, e2 = await token("enterprise", enterprise_id="e1"), await token("enterprise", enterprise_id="e2")
    assert (await client.put("/api/v1/vehicles/晋LC3333", json=OLD_TRUCK, headers=e1)).status == 201
    refused = await client.put("/api/v1/vehicles/晋LC3333", json={**OLD_TRUCK, "fuel_type": "electric"}, headers=e2)
    assert refused.status == 403, await refused.text()
    assert (await refused.json())["error"]["code"] == "not_vehicle_owner"
    row = await (await client.get("/api/v1/vehicles/晋LC3333", headers=admin)).json()
    assert row["fuel_type"] == "diesel" and row["owner_enterprise_id"] == "e1"
    action, role, detail = (await _details(app, "晋LC3333"))[-1]
    assert (action, role) == ("vehicle.put_refused", "enterprise")
    assert detail["attempted"]["fuel_type"] == "electric"
    assert (await client.get("/api/v1/vehicles/晋LC3333", headers=e2)).status == 403
    assert (await (await client.get("/api/v1/vehicles", headers=e2)).json())["vehicles"] == []
    # Nor may it list another's fleet by asking for it.
    other = await client.get("/api/v1/vehicles?owner_enterprise_id=e1", headers=e2)
    assert other.status == 403


async def test_a_vehicle_nobody_owns_is_the_admins(client, admin, token):  # type: ignore[no-untyped-def]
    await _world(client, admin)
    assert (await client.put("/api/v1/vehicles/晋LC3333", json=OLD_TRUCK, headers=admin)).status == 201
    e1 = await token("enterprise", enterprise_id="e1")
    resp = await client.put("/api/v1/vehicles/晋LC3333", json=RETROFIT, headers=e1)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "not_vehicle_owner"


async def test_a_guard_registers_for_the_gates_enterprise(client, admin, token):  # type: ignore[no-untyped-def]
    await _world(client, admin)
    kiosk = await token("kiosk", gate_id="g1")
    resp = await client.put("/api/v1/vehicles/晋LN7777", json=OLD_TRUCK, headers=kiosk)
    assert resp.status == 201 and (await resp.json())["owner_enterprise_id"] == "e1"
    e1 = await token("enterprise", enterprise_id="e1")
    assert (await client.put("/api/v1/vehicles/晋LN7777", json=RETROFIT, headers=e1)).status == 200


async def test_only_the_admin_names_an_owner(client, admin, token):  # type: ignore[no-untyped-def]
    await _world(client, admin)
    e1 = await token("enterprise", enterprise_id="e1")
    given = await client.put("/api/v1/vehicles/晋LC3333", json={**OLD_TRUCK, "owner_enterprise_id": "e2"}, headers=e1)
    assert given.status == 403 and (await given.json())["error"]["code"] == "owner_admin_only"
    unknown = await client.put("/api/v1/vehicles/晋LC3333", json={**OLD_TRUCK, "owner_enterprise_id": "nobody"},
                               headers=admin)
    assert unknown.status == 422 and (await unknown.json())["error"]["code"] == "unknown_enterprise"
    named = await client.put("/api/v1/vehicles/晋LC3333", json={**OLD_TRUCK, "owner_enterprise_id": "e2"},
                             headers=admin)
    assert named.status == 201 and (await named.json())["owner_enterprise_id"] == "e2"
    # An admin's change that does not name an owner keeps the one it has; naming null clears it.
    kept = await client.put("/api/v1/vehicles/晋LC3333", json=RETROFIT, headers=admin)
    assert (await kept.json())["owner_enterprise_id"] == "e2"
    cleared = await client.put("/api/v1/vehicles/晋LC3333", json={**RETROFIT, "owner_enterprise_id": None},
                               headers=admin)
    assert (await cleared.json())["owner_enterprise_id"] is None
    # Saying its own id is allowed to an enterprise (it is what it gets anyway).
    own = await client.put("/api/v1/vehicles/晋LK1111", json={**OLD_TRUCK, "owner_enterprise_id": "e1"}, headers=e1)
    assert own.status == 201
