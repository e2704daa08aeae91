"""Policy-dependent counting: whether a plug-in hybrid counts as clean is the plan's setting, at that moment."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gate_service.config import Settings
from gate_service.policy import PLANS_DIR

PHEV, ELECTRIC = "晋L23456F", "晋L12345D"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    # A later plan, in force from 2024-11-15, that also counts plug-in hybrids as clean transport.
    text = (Path(PLANS_DIR) / "linfen-2024-25.toml").read_text(encoding="utf-8")
    text = text.replace('id = "linfen-2024-25"', 'id = "linfen-phev-counts"', 1)
    text = text.replace("effective_from = 2024-10-01", "effective_from = 2024-11-15", 1)
    text = text.replace('clean = ["electric", "hydrogen"]', 'clean = ["electric", "hydrogen", "phev"]', 1)
    path = tmp_path / "phev.toml"
    path.write_text(text, encoding="utf-8")
    return replace(settings, policy_paths=(path,))


async def test_hybrid_counts_only_under_the_plan_that_says_so(client, admin):
    async def put(path, body):
        resp = await client.put(path, json=body, headers=admin)
        assert resp.status in (200, 201), await resp.text()

    await put("/api/v1/enterprises/e-cem", {"name": "尧都某水泥", "industry": "cement", "county": "尧都区",
                                            "zone_id": "other", "retrofit_completed_on": None, "grade": "B"})
    await put("/api/v1/gates/g1", {"name": "1号门", "enterprise_id": "e-cem", "zone_id": "other"})
    await put(f"/api/v1/vehicles/{PHEV}", {"plate_color": "yellow-green", "emission_stage": 6, "fuel_type": "phev",
                                           "vehicle_class": "heavy_truck"})
    await put(f"/api/v1/vehicles/{ELECTRIC}", {"plate_color": "yellow-green", "fuel_type": "electric",
                                               "vehicle_class": "heavy_truck"})
    for at, plate in (("2024-11-14T23:59:00+08:00", PHEV),    # old plan: not clean
                      ("2024-11-15T00:00:00+08:00", PHEV),    # new plan from local midnight: clean
                      ("2024-11-20T08:00:00+08:00", PHEV),    # clean
                      ("2024-11-20T09:00:00+08:00", ELECTRIC)):
        resp = await client.post("/api/v1/gates/g1/passages", json={"plate": plate, "direction": "in", "at": at,
                                                                     "tonnes": 10}, headers=admin)
        assert resp.status == 201, await resp.text()
        assert (await resp.json())["decision"] == "allow"
    resp = await client.get("/api/v1/reports/clean-transport?enterprise_id=e-cem&from=2024-11-01&to=2024-11-30",
                            headers=admin)
    r = await resp.json()
    assert (r["trips"], r["clean_trips"], r["tonnes"], r["clean_tonnes"]) == (4, 3, 40.0, 30.0)
    assert r["ratio_tonnes"] == 0.75 and r["target"] == 0.6 and r["met"] is True
    # Figures were fixed when the rows were written: the ledger says which plan judged each one.
    rows = await client.get("/api/v1/passages?enterprise_id=e-cem", headers=admin)
    policies = sorted((p["at"], p["policy_id"], p["clean"]) for p in (await rows.json())["passages"])
    assert [(pid, clean) for _, pid, clean in policies] == [
        ("linfen-2024-25", False), ("linfen-phev-counts", True), ("linfen-phev-counts", True),
        ("linfen-phev-counts", True)]
