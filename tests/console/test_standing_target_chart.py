"""Issue 15 item 15 in the browser: in 2026 the bureau's chart still draws the target line, and says the target
is a standing one (base.toml)."""

from __future__ import annotations


def test_the_chart_draws_the_standing_target_in_2026(live, page):  # type: ignore[no-untyped-def]
    admin = live.token("admin")
    live.call("PUT", "/api/v1/enterprises/coal-1", admin, {"name": "霍州示例煤业有限公司", "industry": "coal",
                                                           "county": "霍州市", "zone_id": "huozhou"})
    live.call("PUT", "/api/v1/gates/coal-1-east", admin, {"name": "东门", "enterprise_id": "coal-1",
                                                          "zone_id": "huozhou"})
    live.call("PUT", "/api/v1/vehicles/晋LD12345", admin, {"plate_color": "green", "fuel_type": "electric",
                                                           "vehicle_class": "heavy_truck"})
    for at in ("2026-04-10T08:00:00+08:00", "2026-05-11T08:00:00+08:00"):
        status, body = live.call("POST", "/api/v1/gates/coal-1-east/passages", admin,
                                 {"plate": "晋LD12345", "direction": "in", "at": at, "tonnes": 30})
        assert status == 201, body
    page.open("/bureau", live.token("ecology"))
    page.wait_text("#who", "生态环境局")
    page.set("#f-from", "2026-01-01")
    page.set("#f-to", "2026-06-30")
    page.click("#report-btn")
    page.wait_text("#report-table", "霍州示例煤业有限公司")
    assert "80.0%" in page.q("#report-table tbody tr").text  # the 目标 column: no longer 无目标
    page.click("#report-table tbody tr:first-child")
    page.wait_text("#chart-title", "coal-1")
    chart = page.q("#chart svg")
    assert chart.find_elements("css selector", "polyline.target")
    assert "常态目标" in chart.text and "80.0%" in chart.text
