"""Blacklist endpoints over HTTP with a real database: roles, lifecycle, history, import, export."""

import csv
import io
from datetime import date, datetime, timedelta

import pytest
from openpyxl import Workbook, load_workbook

from blacklist.model import SHANGHAI

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TODAY = datetime.now(SHANGHAI).date()


async def _add(client, headers, plate="晋LA1234", reason="obd_tampering", **extra):
    resp = await client.post("/api/v1/blacklist", json={"plate": plate, "reason": reason, **extra}, headers=headers)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


async def _role_headers(client, admin, token, role):
    if role == "kiosk":
        await client.put("/api/v1/gates/cp1", json={"name": "市区东卡口", "zone_id": "city"}, headers=admin)
        return await token("kiosk", gate_id="cp1")
    if role == "enterprise":
        await client.put("/api/v1/enterprises/e1", json={"name": "某钢铁", "industry": "steel"}, headers=admin)
        return await token("enterprise", enterprise_id="e1")
    return await token(role)


@pytest.mark.parametrize(
    ("role", "write", "history"),
    [("police", 201, 200), ("admin", 201, 200), ("ecology", 403, 200), ("kiosk", 403, 403),
     ("enterprise", 403, 403)],
)
async def test_role_matrix(client, admin, token, role, write, history):
    headers = await _role_headers(client, admin, token, role)
    await _add(client, admin, "晋LB1111")
    resp = await client.post("/api/v1/blacklist", json={"plate": "晋LA1234", "reason": "over_limit"}, headers=headers)
    assert resp.status == write, await resp.text()
    if write == 403:
        assert (await resp.json())["error"]["code"] == "forbidden_role"
    listing = await client.get("/api/v1/blacklist", headers=headers)
    assert listing.status == 200
    assert "晋LB1111" in [e["plate"] for e in (await listing.json())["entries"]]
    assert (await client.get("/api/v1/blacklist/晋LB1111", headers=headers)).status == 200
    assert (await client.get("/api/v1/blacklist/晋LB1111/history", headers=headers)).status == history
    revoke = await client.delete("/api/v1/blacklist/晋LB1111", json={"reason": "误录"}, headers=headers)
    assert revoke.status == (200 if write == 201 else 403)
    imported = await client.post("/api/v1/blacklist/import", data="plate,reason\n晋LC3333,other\n".encode(),
                                 headers={**headers, "Content-Type": "text/csv"})
    assert imported.status == (200 if write == 201 else 403)
    # Revoked and expired entries are for those who keep or supervise the list.
    everything = await client.get("/api/v1/blacklist?status=all", headers=headers)
    assert everything.status == history
    if history == 403:
        assert (await everything.json())["error"]["code"] == "forbidden_status"


async def test_no_token_is_401(client):
    for method, path in [("GET", "/api/v1/blacklist"), ("POST", "/api/v1/blacklist"),
                         ("DELETE", "/api/v1/blacklist/晋LA1234"), ("GET", "/api/v1/blacklist/晋LA1234/history"),
                         ("POST", "/api/v1/blacklist/import")]:
        resp = await client.request(method, path, json={"plate": "晋LA1234", "reason": "other"})
        assert resp.status == 401, (method, path)
        assert (await resp.json())["error"]["code"] == "unauthenticated"


async def test_police_run_the_whole_lifecycle_and_history_keeps_it(client, token):
    police = await token("police")
    created = await client.post("/api/v1/blacklist", headers=police, json={
        "plate": "晋l·a1234", "reason": "device_removed", "valid_until": "2099-03-31", "note": "拆除DPF",
        "case_ref": "临交(2024)123号", "checkpoint": "G108 尧都段"})
    assert created.status == 201, await created.text()
    entry = await created.json()
    assert entry["plate"] == "晋LA1234" and entry["status"] == "active" and entry["result"] == "added"
    assert entry["reason_label"] == "拆除污染控制装置" and entry["added_by"] == "test-police"

    again = await client.post("/api/v1/blacklist", headers=police,
                              json={"plate": "晋LA1234", "reason": "over_limit", "valid_until": "2099-12-31"})
    assert again.status == 200
    merged = await again.json()
    assert merged["result"] == "merged" and merged["id"] == entry["id"]
    assert merged["valid_until"] == "2099-12-31" and merged["reason"] == "device_removed"

    one = await client.get("/api/v1/blacklist/晋LA1234", headers=police)
    assert (await one.json())["valid_until"] == "2099-12-31"

    revoked = await client.delete("/api/v1/blacklist/晋LA1234", json={"reason": "复检合格,装置已恢复"}, headers=police)
    assert revoked.status == 200, await revoked.text()
    body = await revoked.json()
    assert body["status"] == "revoked" and body["close_reason"] == "复检合格,装置已恢复"
    assert (await client.get("/api/v1/blacklist/晋LA1234", headers=police)).status == 404
    active = await (await client.get("/api/v1/blacklist", headers=police)).json()
    assert active["entries"] == []

    history = await (await client.get("/api/v1/blacklist/晋LA1234/history", headers=police)).json()
    kinds = [(e["kind"], e["role"], e["actor"]) for e in history["events"]]
    assert kinds == [("add", "police", "test-police"), ("merge", "police", "test-police"),
                     ("revoke", "police", "test-police")]
    add = history["events"][0]
    assert (add["case_ref"], add["checkpoint"], add["note"], add["token_id"] is not None) == (
        "临交(2024)123号", "G108 尧都段", "拆除DPF", True)
    assert history["events"][1]["reason"] == "over_limit"
    assert history["events"][2]["why"] == "复检合格,装置已恢复"
    assert [e["status"] for e in history["entries"]] == ["revoked"]

    # Listed again later: a new entry, the old one stays in history.
    relisted = await _add(client, police, "晋LA1234", "obd_tampering")
    assert relisted["id"] != entry["id"] and relisted["result"] == "added"
    history = await (await client.get("/api/v1/blacklist/晋LA1234/history", headers=police)).json()
    assert [e["kind"] for e in history["events"]] == ["add", "merge", "revoke", "add"]
    assert sorted(e["status"] for e in history["entries"]) == ["active", "revoked"]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"plate": "XX12345", "reason": "other"}, 422, "invalid_plate", "plate"),
        ({"plate": "晋LA1234", "reason": "drunk"}, 422, "unknown_value", "reason"),
        ({"plate": "晋LA1234"}, 422, "missing_field", "reason"),
        ({"plate": "晋LA1234", "reason": "other", "valid_until": "31/03/2025"}, 422, "validation_failed",
         "valid_until"),
        ({"plate": "晋LA1234", "reason": "other", "valid_until": "2000-01-01"}, 422, "valid_until_past",
         "valid_until"),
        ({"plate": "晋LA1234", "reason": "other", "colour": "red"}, 422, "unknown_field", "colour"),
    ],
)
async def test_bad_adds_are_refused_with_the_field(client, token, body, status, code, field):
    resp = await client.post("/api/v1/blacklist", json=body, headers=await token("police"))
    assert resp.status == status, await resp.text()
    error = (await resp.json())["error"]
    assert (error["code"], error.get("field")) == (code, field)
    assert error["message"]


async def test_revoke_errors(client, token):
    police = await token("police")
    resp = await client.delete("/api/v1/blacklist/晋LA1234", json={"reason": "x"}, headers=police)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_listed"
    await _add(client, police)
    resp = await client.delete("/api/v1/blacklist/晋LA1234", headers=police)
    assert resp.status == 422 and (await resp.json())["error"]["field"] == "reason"
    for blank in ("", "   "):
        resp = await client.delete("/api/v1/blacklist/晋LA1234", json={"reason": blank}, headers=police)
        assert resp.status == 422 and (await resp.json())["error"]["field"] == "reason"
    resp = await client.delete("/api/v1/blacklist/NOPE", json={"reason": "x"}, headers=police)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "invalid_plate"
    assert (await client.get("/api/v1/blacklist/晋LZ9999/history", headers=police)).status == 404


async def test_list_filters(client, token):
    police = await token("police")
    await _add(client, police, "晋LA1111", "obd_tampering")
    await _add(client, police, "晋LA2222", "over_limit", valid_until="2099-01-01")
    await _add(client, police, "晋LA3333", "over_limit")
    await client.delete("/api/v1/blacklist/晋LA3333", json={"reason": "误录"}, headers=police)

    async def plates_of(query):
        resp = await client.get(f"/api/v1/blacklist{query}", headers=police)
        assert resp.status == 200, await resp.text()
        return sorted(e["plate"] for e in (await resp.json())["entries"])

    assert await plates_of("") == ["晋LA1111", "晋LA2222"]
    assert await plates_of("?status=revoked") == ["晋LA3333"]
    assert await plates_of("?status=all") == ["晋LA1111", "晋LA2222", "晋LA3333"]
    assert await plates_of("?status=expired") == []
    assert await plates_of("?reason=over_limit") == ["晋LA2222"]
    assert await plates_of("?reason=over_limit&status=all") == ["晋LA2222", "晋LA3333"]
    assert await plates_of("?plate=晋la·1111") == ["晋LA1111"]
    day = TODAY.isoformat()
    assert await plates_of(f"?added_from={day}&added_to={day}") == ["晋LA1111", "晋LA2222"]
    assert await plates_of(f"?added_from={(TODAY + timedelta(days=1)).isoformat()}") == []
    assert await plates_of(f"?added_to={(TODAY - timedelta(days=1)).isoformat()}") == []
    bad = await client.get("/api/v1/blacklist?status=maybe", headers=police)
    assert bad.status == 422
    bad = await client.get("/api/v1/blacklist?added_from=yesterday", headers=police)
    assert bad.status == 422 and (await bad.json())["error"]["field"] == "added_from"


IMPORT_CSV = """车牌号,原因,有效期至,备注
晋LA1234,OBD篡改,2099-03-31,路检
NOTAPLATE,超标排放,,
晋LB2222,酒驾,,
晋LC3333,超标排放,2025-13-45,
晋la·1234,超标排放,2099/12/31,复查
晋LD12345,拆除污染控制装置,,
晋LE5555,other,2000-01-01,
,超标排放,,
晋LF6666,over_limit,2099年6月1日,
"""


async def test_csv_import_reports_every_row_keeps_valid_ones_and_merges_duplicates(client, token):
    police = await token("police")
    resp = await client.post("/api/v1/blacklist/import", data=IMPORT_CSV.encode("utf-8"),
                             headers={**police, "Content-Type": "text/csv"})
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    assert (report["added"], report["merged"], report["rejected"]) == (3, 1, 5)
    rows = {r["line"]: r for r in report["rows"]}
    assert sorted(rows) == list(range(2, 11))
    assert (rows[2]["result"], rows[2]["valid_until"]) == ("added", "2099-03-31")
    assert (rows[3]["code"], rows[3]["field"]) == ("invalid_plate", "plate")
    assert (rows[4]["code"], rows[4]["field"]) == ("unknown_reason", "reason")
    assert (rows[5]["code"], rows[5]["field"]) == ("invalid_date", "valid_until")
    assert rows[6]["result"] == "merged" and rows[6]["merged_with_line"] == 2
    assert rows[6]["valid_until"] == "2099-12-31" and rows[6]["plate"] == "晋LA1234"
    assert rows[7]["result"] == "added"
    assert rows[8]["code"] == "valid_until_past"
    assert (rows[9]["code"], rows[9]["field"]) == ("missing_field", "plate")
    assert (rows[10]["result"], rows[10]["valid_until"]) == ("added", "2099-06-01")
    assert [r["line"] for r in report["rejected_rows"]] == [3, 4, 5, 8, 9]

    one = await (await client.get("/api/v1/blacklist/晋LA1234", headers=police)).json()
    # Merged: one entry, the first reason and note, the later last day.
    assert (one["reason"], one["note"], one["valid_until"]) == ("obd_tampering", "路检", "2099-12-31")
    history = await (await client.get("/api/v1/blacklist/晋LA1234/history", headers=police)).json()
    assert [(e["kind"], e["source"], e["import_line"]) for e in history["events"]] == [
        ("add", "import", 2), ("merge", "import", 6)]
    assert history["events"][1]["note"] == "复查"

    # The same file again, as GBK: everything valid is already listed, so merged.
    again = await (await client.post("/api/v1/blacklist/import", data=IMPORT_CSV.encode("gb18030"),
                                     headers={**police, "Content-Type": "text/csv"})).json()
    assert (again["added"], again["merged"], again["rejected"]) == (0, 4, 5)
    rows = {r["line"]: r for r in again["rows"]}
    assert "merged_with_line" not in rows[2] and rows[2]["message"]
    listing = await (await client.get("/api/v1/blacklist", headers=police)).json()
    assert sorted(e["plate"] for e in listing["entries"]) == ["晋LA1234", "晋LD12345", "晋LF6666"]


async def test_xlsx_import_with_excel_dates(client, token):
    police = await token("police")
    book = Workbook()
    ws = book.active
    ws.append(["号牌号码", "违法原因", "有效期", "说明", "案件编号"])
    ws.append(["晋L12345D", "超标排放", datetime(2099, 3, 31), "路检", "A-1"])
    ws.append(["晋LB7777", "篡改OBD", None, None, None])
    ws.append(["bad", "超标排放", None, None, None])
    ws.append(["晋LC8888", "超标排放", "soon", None, None])
    buf = io.BytesIO()
    book.save(buf)
    resp = await client.post("/api/v1/blacklist/import", data=buf.getvalue(),
                             headers={**police, "Content-Type": XLSX})
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    assert (report["added"], report["rejected"]) == (2, 2)
    assert [(r["line"], r["code"]) for r in report["rejected_rows"]] == [(4, "invalid_plate"), (5, "invalid_date")]
    entry = await (await client.get("/api/v1/blacklist/晋L12345D", headers=police)).json()
    assert (entry["valid_until"], entry["reason"], entry["note"], entry["case_ref"]) == (
        "2099-03-31", "over_limit", "路检", "A-1")
    assert (await (await client.get("/api/v1/blacklist/晋LB7777", headers=police)).json())["reason"] == \
        "obd_tampering"


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04broken-zip"])
async def test_unreadable_import_is_400(client, token, data):
    resp = await client.post("/api/v1/blacklist/import", data=data,
                             headers={**await token("police"), "Content-Type": "text/csv"})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] in ("empty_file", "bad_xlsx")


async def _export_fixture(client, police):
    await _add(client, police, "晋LA1234", "obd_tampering", valid_until="2099-03-31", note="路检",
               case_ref="C-1", checkpoint="G108")
    await _add(client, police, "晋LB2222", "device_removed")
    await _add(client, police, "晋LC3333", "over_limit")
    await _add(client, police, "晋LD4444", "other")
    await client.delete("/api/v1/blacklist/晋LC3333", json={"reason": "误录"}, headers=police)


HEADERS = ["车牌号", "原因", "有效期至", "状态", "备注", "案件编号", "查处地点", "列入时间", "列入人", "撤销/到期时间",
           "撤销原因"]


async def test_csv_export_has_bom_chinese_headers_and_labels(client, token):
    police = await token("police")
    await _export_fixture(client, police)
    resp = await client.get("/api/v1/blacklist?format=csv&status=all", headers=police)
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    raw = await resp.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"))))
    assert rows[0] == HEADERS
    by_plate = {r[0]: r for r in rows[1:]}
    assert sorted(by_plate) == ["晋LA1234", "晋LB2222", "晋LC3333", "晋LD4444"]
    assert by_plate["晋LA1234"][:7] == ["晋LA1234", "OBD篡改", "2099-03-31", "有效", "路检", "C-1", "G108"]
    assert by_plate["晋LA1234"][8] == "test-police"
    assert by_plate["晋LB2222"][1:4] == ["拆除污染控制装置", "", "有效"]
    assert by_plate["晋LC3333"][1] == "超标排放" and by_plate["晋LC3333"][3] == "已撤销"
    assert by_plate["晋LC3333"][10] == "误录" and by_plate["晋LC3333"][9]
    assert by_plate["晋LD4444"][1] == "其他"
    added = datetime.fromisoformat(by_plate["晋LA1234"][7])
    assert abs(added - datetime.now(SHANGHAI).replace(tzinfo=None)) < timedelta(minutes=5)  # Beijing time

    # The export goes back in as an import: its headers and labels are understood.
    active = await (await client.get("/api/v1/blacklist?format=csv", headers=police)).read()
    report = await (await client.post("/api/v1/blacklist/import", data=active,
                                      headers={**police, "Content-Type": "text/csv"})).json()
    assert (report["merged"], report["rejected"]) == (3, 0)


async def test_xlsx_export_cell_by_cell(client, token):
    police = await token("police")
    await _export_fixture(client, police)
    resp = await client.get("/api/v1/blacklist?format=xlsx&status=all", headers=await token("ecology"))
    assert resp.status == 200
    assert resp.content_type == XLSX
    book = load_workbook(io.BytesIO(await resp.read()))
    ws = book.worksheets[0]
    assert ws.title == "黑名单"
    assert [c.value for c in ws[1]] == HEADERS
    rows = {r[0]: r for r in ws.iter_rows(min_row=2, values_only=True)}
    assert sorted(rows) == ["晋LA1234", "晋LB2222", "晋LC3333", "晋LD4444"]
    a = rows["晋LA1234"]
    assert a[1] == "OBD篡改"
    assert a[2] in (date(2099, 3, 31), datetime(2099, 3, 31))  # a real Excel date, not text
    assert a[3:7] == ("有效", "路检", "C-1", "G108")
    assert isinstance(a[7], datetime) and a[8] == "test-police" and a[9] is None and a[10] is None
    assert rows["晋LB2222"][1:4] == ("拆除污染控制装置", None, "有效")
    c = rows["晋LC3333"]
    assert (c[1], c[3], c[10]) == ("超标排放", "已撤销", "误录") and isinstance(c[9], datetime)
    assert rows["晋LD4444"][1] == "其他"
    # Only the active list by default.
    resp = await client.get("/api/v1/blacklist?format=xlsx", headers=police)
    ws = load_workbook(io.BytesIO(await resp.read())).worksheets[0]
    assert sorted(r[0] for r in ws.iter_rows(min_row=2, values_only=True)) == ["晋LA1234", "晋LB2222", "晋LD4444"]


async def test_openapi_describes_the_blacklist(client, admin):
    spec = await (await client.get("/api/v1/openapi.json", headers=admin)).json()
    add = spec["paths"]["/api/v1/blacklist"]["post"]
    schema = add["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["reason"]["enum"] == ["obd_tampering", "device_removed", "over_limit", "other"]
    assert "201" in add["responses"] and add["x-roles"] == ["police", "admin"]
    assert "text/csv" in spec["paths"]["/api/v1/blacklist/import"]["post"]["requestBody"]["content"]
    assert "delete" in spec["paths"]["/api/v1/blacklist/{plate}"]
    assert "get" in spec["paths"]["/api/v1/blacklist/{plate}/history"]
    listing = spec["paths"]["/api/v1/blacklist"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"plate", "reason", "status", "added_from", "added_to",
                                                          "format"}
