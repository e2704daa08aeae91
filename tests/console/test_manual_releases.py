"""人工放行 on the police and bureau pages, in a real headless Chromium: an override that let a 国3 lorry
through is listed on both, with the rule that denied it and the guard's reason; logging out clears it."""

from __future__ import annotations


def test_police_and_bureau_see_the_manual_release(live, page):
    admin = live.token("admin")
    live.call("PUT", "/api/v1/gates/city-1", admin, {"name": "市区检查站", "zone_id": "city"})
    live.call("PUT", "/api/v1/vehicles/晋LC3333", admin, {"plate_color": "yellow", "emission_stage": 3,
                                                          "fuel_type": "diesel", "vehicle_class": "heavy_truck"})
    status, denied = live.call("POST", "/api/v1/gates/city-1/passages", admin,
                               {"plate": "晋LC3333", "direction": "in"})
    assert status == 201 and denied["decision"] == "deny"
    status, released = live.call("POST", "/api/v1/gates/city-1/passages", admin, {
        "plate": "晋LC3333", "direction": "in", "overrides": denied["passage_id"],
        "override_reason": "抢险物资 经值班领导批准"})
    assert status == 201 and released["manual_release"] is True

    for path, role in (("/police", "police"), ("/bureau", "ecology")):
        page.open(path, live.token(role))
        page.wait_text("#releases-table", "晋LC3333")
        text = page.text("#releases-table")
        assert "抢险物资 经值班领导批准" in text and "规则禁止" in text and "市区检查站" in text
        assert "共 1 条" in page.text("#releases-count")
        assert page.errors() == ""
        # One panel for both pages (releases.js renders it): its heading and its own search form work on each.
        assert page.text("#releases-panel h2").startswith("人工放行")
        page.type("#mr-plate", "晋LC0000")
        page.click("#releases-btn")
        page.wait_text("#releases-count", "共 0 条")
        page.type("#mr-plate", "晋LC3333")
        page.click("#releases-btn")
        page.wait_text("#releases-count", "共 1 条")
        page.screenshot(f"manual-releases{path.replace('/', '-')}.png")
    page.click("#logout-btn")
    page.wait(lambda: "晋LC3333" not in page.text("#releases-table"), what="the list cleared on logout")
