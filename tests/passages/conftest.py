"""A small world for passage tests: enterprises in and out of the zones, gates, vehicles of each kind."""

import pytest

CAMPAIGN_DAY = "2024-11-15T09:30:00+08:00"


@pytest.fixture
async def world(client, admin):
    async def put(path, body):
        resp = await client.put(path, json=body, headers=admin)
        assert resp.status in (200, 201), await resp.text()

    # A steel works in the Xiangfen zone that had not finished its retrofit by 2024-09-30.
    await put("/api/v1/enterprises/e-late", {"name": "襄汾某钢铁", "industry": "steel", "county": "襄汾县",
                                             "zone_id": "xiangfen", "retrofit_completed_on": None, "grade": "B"})
    await put("/api/v1/enterprises/e-a", {"name": "A级水泥", "industry": "cement", "county": "尧都区",
                                          "zone_id": "other", "retrofit_completed_on": "2024-06-01", "grade": "A"})
    await put("/api/v1/gates/g-late", {"name": "1号门", "enterprise_id": "e-late", "zone_id": "xiangfen"})
    await put("/api/v1/gates/g-a", {"name": "东门", "enterprise_id": "e-a", "zone_id": "other"})
    await put("/api/v1/gates/city-1", {"name": "市区检查站", "zone_id": "city"})
    await put("/api/v1/vehicles/晋LA1234", {"plate_color": "yellow", "emission_stage": 5, "fuel_type": "diesel",
                                            "vehicle_class": "heavy_truck", "vin": "LFV2A21K5C4123456"})
    await put("/api/v1/vehicles/晋L12345D", {"plate_color": "yellow-green", "fuel_type": "electric",
                                             "vehicle_class": "heavy_truck"})
    await put("/api/v1/vehicles/晋LB4444", {"plate_color": "yellow", "emission_stage": 4, "fuel_type": "diesel",
                                            "vehicle_class": "heavy_truck"})
    await put("/api/v1/vehicles/晋LC3333", {"plate_color": "yellow", "emission_stage": 3, "fuel_type": "diesel",
                                            "vehicle_class": "heavy_truck"})
    await put("/api/v1/vehicles/晋LK5678", {"plate_color": "blue", "emission_stage": 6, "fuel_type": "diesel",
                                            "vehicle_class": "logistics"})
    return admin


async def _pass(client, headers, gate, plate, at=CAMPAIGN_DAY, **extra):
    resp = await client.post(f"/api/v1/gates/{gate}/passages",
                             json={"plate": plate, "direction": "in", "at": at, **extra}, headers=headers)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


def _clauses(answer):
    return {r["clause"] for r in answer["reasons"] if r["effect"] == "deny"}


