"""The console for the roles a hostile review tried (issue 15 item 13): an enterprise on /bureau, logging out,
and a flag (not a denial) on a green 放行 at the kiosk. Screenshots go to tests/artifacts/."""

from __future__ import annotations


def _enterprise_with_trips(live) -> str:  # type: ignore[no-untyped-def]
    admin = live.token("admin")
    live.call("PUT", "/api/v1/enterprises/coal-1", admin, {"name": "霍州示例煤业有限公司", "industry": "coal",
                                                           "county": "霍州市", "zone_id": "huozhou", "grade": "B"})
    live.call("PUT", "/api/v1/enterprises/coal-2", admin, {"name": "洪洞示例洗煤厂", "industry": "coal",
                                                           "county": "洪洞县", "zone_id": "hongtong", "grade": "C"})
    for gate, ent, zone in (("coal-1-east", "coal-1", "huozhou"), ("coal-2-gate", "coal-2", "hongtong")):
        assert live.call("PUT", f"/api/v1/gates/{gate}", admin,
                         {"name": f"{ent} 大门", "enterprise_id": ent, "zone_id": zone})[0] == 201
    live.call("PUT", "/api/v1/vehicles/晋LD12345", admin, {"plate_color": "green", "emission_stage": 6,
                                                           "fuel_type": "electric", "vehicle_class": "heavy_truck"})
    live.call("PUT", "/api/v1/vehicles/晋L55555", admin, {"plate_color": "yellow", "emission_stage": 6,
                                                          "fuel_type": "diesel", "vehicle_class": "heavy_truck"})
    for gate, plate, at in (("coal-1-east", "晋LD12345", "2025-04-10T08:00:00+08:00"),
                            ("coal-1-east", "晋L55555", "2025-05-12T08:00:00+08:00"),
                            ("coal-2-gate", "晋L55555", "2025-04-10T09:00:00+08:00")):
        status, body = live.call("POST", f"/api/v1/gates/{gate}/passages", admin,
                                 {"plate": plate, "direction": "in", "at": at, "tonnes": 30})
        assert status == 201, body
    return admin


def _delay_requests(page, needle: str, ms: int) -> None:  # type: ignore[no-untyped-def]
    """The page's fetch() waits ms before asking for a URL holding needle: a loaded server's slow answer."""
    page.d.execute_script(
        "const [needle, ms] = arguments, f = window.fetch;"
        "window.fetch = (url, opts) => String(url).includes(needle)"
        " ? new Promise((ok) => setTimeout(ok, ms)).then(() => f(url, opts)) : f(url, opts);", needle, ms)


def _ask_for_2025(page) -> None:  # type: ignore[no-untyped-def]
    page.set("#f-from", "2025-01-01")
    page.set("#f-to", "2025-12-31")
    page.click("#report-btn")
    # The answer for the period asked, not the one the page loaded by itself at login (same name in its table).
    page.wait_text("#report-totals", "2025-01-01 至 2025-12-31")
    page.wait_text("#report-table", "霍州示例煤业有限公司")


def test_enterprise_sees_its_own_report_on_bureau(live, page):
    _enterprise_with_trips(live)
    page.open("/bureau", live.token("enterprise", enterprise_id="coal-1"))
    page.wait_text("#who", "企业")
    _ask_for_2025(page)
    assert "slice" not in page.errors() and "undefined" not in page.text("#report-totals")
    assert page.text("#report-totals").startswith("2025-01-01 至 2025-12-31 · 1 家企业")
    rows = [r.text for r in page.qa("#report-table tbody tr")]
    assert len(rows) == 1 and "洪洞示例洗煤厂" not in rows[0]
    page.wait_text("#chart-title", "coal-1")
    assert page.q("#chart svg")
    # Its own ledger only; the bureau's alert declaration is not offered to it.
    page.click("#ledger-btn")
    page.wait_text("#ledger-count", "2 条")
    assert not page.q("#alert-form").is_displayed()
    assert page.errors() == "", page.errors()
    page.screenshot("bureau-enterprise.png")


def test_logging_out_clears_the_previous_roles_data(live, page):
    _enterprise_with_trips(live)
    page.open("/bureau", live.token("ecology"))
    page.set("#f-from", "2025-01-01")
    page.set("#f-to", "2025-12-31")
    page.click("#report-btn")
    page.wait_text("#report-table", "洪洞示例洗煤厂")
    page.set("#l-from", "2025-01-01")
    page.click("#ledger-btn")
    page.wait_text("#ledger-table", "晋L55555")
    page.click("#logout-btn")
    page.wait_text("#who", "未登录")
    page.wait(lambda: "洪洞示例洗煤厂" not in page.text("body") and "晋L55555" not in page.text("body"),
              what="the bureau's figures gone from the screen")
    assert page.q("#token-input").is_displayed()
    page.screenshot("bureau-logged-out.png")

    # The kiosk too: the last decision and today's list go with the guard's token.
    admin = live.token("admin")
    live.call("PUT", "/api/v1/gates/city-1", admin, {"name": "市区检查站", "zone_id": "city"})
    page.open("/kiosk", live.token("kiosk", gate_id="city-1"))
    page.wait_text("#who", "门岗终端")
    page.type("#m-plate", "晋LD12345")
    page.click("#manual-form button[type=submit]")
    page.wait_text("#verdict", "晋LD12345")
    page.wait_text("#today-table", "晋LD12345")
    page.click("#logout-btn")
    page.wait_text("#who", "未登录")
    page.wait(lambda: "晋LD12345" not in page.text("body"), what="the kiosk's passages gone from the screen")


def test_kiosk_shows_a_flag_as_a_note_on_a_green_allow(live, page):
    admin = live.token("admin")
    live.call("PUT", "/api/v1/gates/city-1", admin, {"name": "市区检查站", "zone_id": "city"})
    page.open("/kiosk", live.token("kiosk", gate_id="city-1"))
    page.wait_text("#who", "门岗终端")
    # An unregistered plate at a city checkpoint: let through, flagged for review (三(三)15).
    page.type("#m-plate", "晋LZ9999")
    page.click("#manual-form button[type=submit]")
    page.wait_text("#verdict", "晋LZ9999")
    assert "放行" in page.text("#verdict") and "allow" in page.q("#verdict").get_attribute("class")
    reasons = page.text("#v-reasons")
    assert "undefined" not in reasons
    assert not page.qa("#v-reasons li.deny"), "a flag drawn as a denial"
    flags = page.qa("#v-reasons li.flag")
    assert len(flags) == 1 and "提示 三(三)15" in flags[0].text and "已记录待核查" in flags[0].text
    page.screenshot("kiosk-flag.png")
    # The same passage chosen again from today's list looks the same.
    page.wait_text("#today-table", "晋LZ9999")
    page.click("#today-table tbody tr:first-child")
    page.wait(lambda: len(page.qa("#v-reasons li.flag")) == 1 and not page.qa("#v-reasons li.deny"),
              what="the flag from today's list")
    assert "undefined" not in page.text("#v-reasons")


def test_the_2025_report_is_not_confused_with_the_default_years(live, page):
    """The flake of test_enterprise_sees_its_own_report_on_bureau, made certain: the page loads the current
    year's report by itself at login; when that answer is on screen before the 2025 one (a loaded machine), the
    enterprise's name is already in the table, so waiting for the name alone read this year's totals."""
    _enterprise_with_trips(live)
    page.open("/bureau", live.token("enterprise", enterprise_id="coal-1"))
    year = page.d.execute_script("return CG.today().slice(0, 4)")
    page.wait_text("#report-totals", f"{year}-01-01 至 {year}-12-31")  # the login's own report, drawn
    _delay_requests(page, "from=2025-01-01", 1500)
    _ask_for_2025(page)
    assert page.text("#report-totals").startswith("2025-01-01 至 2025-12-31 · 1 家企业"), page.text("#report-totals")
    assert "2 车次" not in page.text("#report-totals")  # an enterprise token: no city totals
    row = page.q("#report-table tbody tr").text
    assert " 2 " in f" {row} ", row  # its two 2025 trips, not this year's none
    # A refused query leaves neither the last figures nor a 查询中 line under the dates it names.
    page.set("#f-to", "2024-12-31")
    page.click("#report-btn")
    page.wait_text("#report-error", "bad_period")
    assert page.text("#report-totals") == "" and not page.qa("#report-table tbody tr")
