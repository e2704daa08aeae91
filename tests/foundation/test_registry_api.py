"""Registry endpoints over HTTP with a real database: roles, validation, errors, import."""

import io

import pytest
from openpyxl import Workbook, load_workbook  # noqa: F401 - load_workbook used in later tests

STEEL = {"name": "临汾市某钢铁有限公司", "industry": "steel", "county": "襄汾县", "zone_id": "xiangfen",
         "retrofit_completed_on": "2024-09-15", "grade": "B"}


async def _enterprise(client, admin, ident="e-steel", body=STEEL):
    resp = await client.put(f"/api/v1/enterprises/{ident}", json=body, headers=admin)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


async def test_healthz_is_open_and_reports_database(client):
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["passages_spooled"] is False and body["video_segments_pending_index"] == 0


async def test_no_token_is_401_json_and_bad_token_is_401(client):
    resp = await client.get("/api/v1/enterprises")
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthenticated"
    resp = await client.get("/api/v1/enterprises", headers={"Authorization": "Bearer nope"})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "invalid_token"
    resp = await client.get("/api/v1/enterprises", headers={"Authorization": "Basic abc"})
    assert resp.status == 401


async def test_revoked_token_is_refused_at_once(client, app):
    from gate_service import auth, keys

    token_id, secret = await auth.create_token(app[keys.POOL], "ecology")
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/enterprises", headers=headers)).status == 200
    assert await auth.revoke_token(app[keys.POOL], token_id)
    assert (await client.get("/api/v1/enterprises", headers=headers)).status == 401


async def test_enterprise_create_update_and_read(client, admin, token):
    created = await client.put("/api/v1/enterprises/e-steel", json=STEEL, headers=admin)
    assert created.status == 201
    updated = await client.put("/api/v1/enterprises/e-steel", json={**STEEL, "grade": "A"}, headers=admin)
    assert updated.status == 200
    assert (await updated.json())["grade"] == "A"
    ecology = await token("ecology")
    listing = await (await client.get("/api/v1/enterprises", headers=ecology)).json()
    assert [e["id"] for e in listing["enterprises"]] == ["e-steel"]
    one = await (await client.get("/api/v1/enterprises/e-steel", headers=ecology)).json()
    assert one["county"] == "襄汾县" and one["retrofit_completed_on"] == "2024-09-15"


@pytest.mark.parametrize(
    ("role", "method", "path", "body", "expected"),
    [
        ("ecology", "PUT", "/api/v1/enterprises/e2", STEEL, 403),
        ("police", "PUT", "/api/v1/enterprises/e2", STEEL, 403),
        ("kiosk", "PUT", "/api/v1/enterprises/e2", STEEL, 403),
        ("enterprise", "PUT", "/api/v1/enterprises/e2", STEEL, 403),
        ("admin", "PUT", "/api/v1/enterprises/e2", STEEL, 201),
        ("police", "GET", "/api/v1/enterprises", None, 403),
        ("kiosk", "GET", "/api/v1/enterprises", None, 403),
        ("ecology", "GET", "/api/v1/enterprises", None, 200),
        ("ecology", "PUT", "/api/v1/gates/g2", {"name": "东门", "zone_id": "city"}, 403),
        ("admin", "PUT", "/api/v1/gates/g2", {"name": "东门", "zone_id": "city"}, 201),
        ("ecology", "GET", "/api/v1/gates", None, 200),
        ("police", "GET", "/api/v1/gates", None, 403),
        ("ecology", "PUT", "/api/v1/vehicles/晋L12345", {"fuel_type": "diesel", "vehicle_class": "heavy_truck"}, 403),
        ("police", "PUT", "/api/v1/vehicles/晋L12345", {"fuel_type": "diesel", "vehicle_class": "heavy_truck"}, 403),
        ("kiosk", "PUT", "/api/v1/vehicles/晋L12345", {"fuel_type": "diesel", "vehicle_class": "heavy_truck"}, 201),
        ("admin", "PUT", "/api/v1/vehicles/晋L12345", {"fuel_type": "diesel", "vehicle_class": "heavy_truck"}, 201),
        ("police", "GET", "/api/v1/vehicles", None, 200),
        ("kiosk", "GET", "/api/v1/vehicles", None, 403),
        # An enterprise lists and registers its own fleet (issue 15 item 1: the owning enterprise's to change).
        ("enterprise", "GET", "/api/v1/vehicles", None, 200),
        ("enterprise", "PUT", "/api/v1/vehicles/晋L12345", {"fuel_type": "diesel", "vehicle_class": "heavy_truck"}, 201),
        ("kiosk", "POST", "/api/v1/vehicles/import", None, 403),
        ("ecology", "GET", "/metrics", None, 403),
        ("admin", "GET", "/metrics", None, 200),
    ],
)
async def test_role_matrix(client, admin, token, role, method, path, body, expected):
    await _enterprise(client, admin)
    await client.put("/api/v1/gates/g1", json={"name": "1号门", "enterprise_id": "e-steel", "zone_id": "xiangfen"},
                     headers=admin)
    kw = {"gate_id": "g1"} if role == "kiosk" else {"enterprise_id": "e-steel"} if role == "enterprise" else {}
    headers = await token(role, **kw)
    resp = await client.request(method, path, json=body, headers=headers)
    assert resp.status == expected, await resp.text()
    if expected >= 400:
        assert (await resp.json())["error"]["code"] in ("forbidden_role", "forbidden_enterprise")


async def test_enterprise_token_sees_only_its_own(client, admin, token):
    await _enterprise(client, admin, "e-a")
    await _enterprise(client, admin, "e-b")
    mine = await token("enterprise", enterprise_id="e-a")
    listing = await (await client.get("/api/v1/enterprises", headers=mine)).json()
    assert [e["id"] for e in listing["enterprises"]] == ["e-a"]
    assert (await client.get("/api/v1/enterprises/e-a", headers=mine)).status == 200
    other = await client.get("/api/v1/enterprises/e-b", headers=mine)
    assert other.status == 403
    assert (await other.json())["error"]["code"] == "forbidden_enterprise"


async def test_kiosk_reads_only_its_gate(client, admin, token):
    await _enterprise(client, admin)
    for gate in ("g1", "g2"):
        await client.put(f"/api/v1/gates/{gate}", json={"name": gate, "enterprise_id": "e-steel", "zone_id": "xiangfen"},
                         headers=admin)
    kiosk = await token("kiosk", gate_id="g1")
    assert (await client.get("/api/v1/gates/g1", headers=kiosk)).status == 200
    assert (await client.get("/api/v1/gates/g2", headers=kiosk)).status == 403


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "code"),
    [
        (b'{"name": "x", ', "application/json", 400, "invalid_json"),
        (b"", "application/json", 400, "empty_body"),
        (b'["not", "an", "object"]', "application/json", 422, "wrong_type"),
        (b'{"name": "x"}', "application/json", 422, "missing_field"),
        (b'{"name": "x", "industry": "shipbuilding"}', "application/json", 422, "unknown_value"),
        (b'{"name": 5, "industry": "steel"}', "application/json", 422, "wrong_type"),
        (b'{"name": "x", "industry": "steel", "retrofit_completed_on": "30/09/2024"}', "application/json", 422,
         "validation_failed"),
        (b'{"name": "x", "industry": "steel", "colour": "red"}', "application/json", 422, "unknown_field"),
        (b'\xff\xfe{}', "application/json", 400, "invalid_encoding"),
        (b"name=x", "application/x-www-form-urlencoded", 400, "invalid_json"),
    ],
)
async def test_malformed_bodies_get_json_errors_naming_the_problem(client, admin, raw, content_type, status, code):
    resp = await client.put("/api/v1/enterprises/e1", data=raw, headers={**admin, "Content-Type": content_type})
    assert resp.status == status, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == code
    assert error["message"]
    if status == 422 and code != "wrong_type":
        assert error["field"] in ("name", "industry", "retrofit_completed_on", "colour", "body")


async def test_oversize_body_is_413_json(aiohttp_client, settings):
    from dataclasses import replace

    from gate_service.app import create_app

    client = await aiohttp_client(create_app(replace(settings, max_body_bytes=1024)))
    resp = await client.put("/api/v1/enterprises/e1", data=b"{" + b" " * 4096 + b"}",
                            headers={"Content-Type": "application/json", "Authorization": "Bearer x"})
    # The size check must come before anything else reads the body, including auth.
    assert resp.status in (401, 413)
    from gate_service import auth, keys

    _, secret = await auth.create_token(client.app[keys.POOL], "admin")
    resp = await client.put("/api/v1/enterprises/e1", data=b'{"name": "' + b"x" * 4096 + b'"}',
                            headers={"Content-Type": "application/json", "Authorization": f"Bearer {secret}"})
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "body_too_large"


async def test_unknown_route_and_method_are_json(client, admin):
    resp = await client.get("/api/v1/nothing", headers=admin)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "route_not_found"
    resp = await client.delete("/api/v1/enterprises", headers=admin)
    assert resp.status == 405
    assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_gate_with_unknown_enterprise_is_422(client, admin):
    resp = await client.put("/api/v1/gates/g1", json={"name": "1号门", "enterprise_id": "nope", "zone_id": "city"},
                            headers=admin)
    assert resp.status == 422
    assert (await resp.json())["error"]["field"] == "enterprise_id"


async def test_vehicle_plate_is_normalised_and_validated(client, admin):
    resp = await client.put("/api/v1/vehicles/晋l·a1234", json={"fuel_type": "diesel", "vehicle_class": "heavy_truck",
                                                                "emission_stage": 5, "vin": "LFV2A21K5C4123456"},
                            headers=admin)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["plate"] == "晋LA1234"
    got = await (await client.get("/api/v1/vehicles/晋LA1234", headers=admin)).json()
    assert got["emission_stage"] == 5
    bad = await client.put("/api/v1/vehicles/XX12345", json={"fuel_type": "diesel", "vehicle_class": "car"},
                           headers=admin)
    assert bad.status == 422
    assert (await bad.json())["error"]["code"] == "invalid_plate"
    missing = await client.get("/api/v1/vehicles/晋LB9999", headers=admin)
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"


CSV = """车牌号,车牌颜色,排放阶段,燃料类型,车辆类型,VIN,注册日期,车队
晋LA1234,黄牌,国5,柴油,重型货车,LFV2A21K5C4123456,2019-05-01,汾河物流
晋LD12345,绿牌,,纯电动,heavy_truck,,2023-01-10,汾河物流
晋LB2222,yellow,6,diesel,heavy_truck,,,
NOTAPLATE,yellow,5,diesel,heavy_truck,,,
晋LC3333,yellow,9,diesel,heavy_truck,,,
晋LA1234,yellow,4,diesel,heavy_truck,,,
晋LE4444,yellow,5,coal,heavy_truck,,,
晋LF5555,yellow,5,diesel,,,,
晋LG6666,yellow,5,diesel,heavy_truck,,2023-13-45,
"""


async def test_csv_import_reports_each_bad_row_and_keeps_good_ones(client, admin):
    resp = await client.post("/api/v1/vehicles/import", data=CSV.encode("utf-8"),
                             headers={**admin, "Content-Type": "text/csv"})
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    assert report["created"] == 3
    assert report["updated"] == 0
    assert report["rejected"] == 6
    by_line = {r["line"]: r for r in report["rejected_rows"]}
    assert by_line[5]["code"] == "invalid_plate"
    assert by_line[6]["field"] == "emission_stage"
    assert by_line[7]["code"] == "duplicate_row"
    assert by_line[8]["field"] == "fuel_type"
    assert by_line[9]["field"] == "vehicle_class"
    assert by_line[10]["field"] == "registered_on"
    kept = await (await client.get("/api/v1/vehicles/晋LA1234", headers=admin)).json()
    assert kept["emission_stage"] == 5 and kept["plate_color"] == "yellow" and kept["haulier"] == "汾河物流"
    again = await (await client.post("/api/v1/vehicles/import", data=CSV.encode("gb18030"),
                                     headers={**admin, "Content-Type": "text/csv"})).json()
    assert again["created"] == 0 and again["updated"] == 3


async def test_xlsx_import(client, admin):
    book = Workbook()
    ws = book.active
    ws.append(["plate", "plate_color", "emission_stage", "fuel_type", "vehicle_class"])
    ws.append(["晋L12345D", "yellow-green", None, "electric", "heavy_truck"])
    ws.append(["晋L99999", "yellow", 3, "diesel", "heavy_truck"])
    ws.append(["bad", "yellow", 3, "diesel", "heavy_truck"])
    buf = io.BytesIO()
    book.save(buf)
    resp = await client.post("/api/v1/vehicles/import", data=buf.getvalue(), headers={
        **admin, "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
    report = await resp.json()
    assert (report["created"], report["rejected"]) == (2, 1)
    assert report["rejected_rows"][0]["line"] == 4


@pytest.mark.parametrize("data", [b"", b"\x00\x01\x02garbage", b"PK\x03\x04broken-zip"])
async def test_unreadable_import_files_are_400(client, admin, data):
    resp = await client.post("/api/v1/vehicles/import", data=data, headers={**admin, "Content-Type": "text/csv"})
    assert resp.status in (200, 400)
    body = await resp.json()
    if resp.status == 400:
        assert body["error"]["code"] in ("empty_file", "bad_xlsx", "bad_encoding", "no_header")
    else:
        assert body["created"] == 0


async def test_openapi_describes_every_route(client, admin, app):
    from gate_service import keys

    spec = await (await client.get("/api/v1/openapi.json", headers=admin)).json()
    assert spec["openapi"].startswith("3.")
    import re

    for ep in app[keys.API].endpoints:
        path = re.sub(r"\{([^}:]+):[^}]*\}", r"{\1}", ep.path)
        assert ep.method.lower() in spec["paths"][path]
    assert spec["paths"]["/api/v1/enterprises/{id}"]["put"]["requestBody"]["content"]["application/json"]


async def test_changes_are_audited(client, admin, app):
    from gate_service import keys

    await _enterprise(client, admin)
    rows = await app[keys.POOL].fetch("SELECT actor, role, action, target FROM audit_log")
    assert [(r["role"], r["action"], r["target"]) for r in rows] == [("admin", "enterprise.put", "e-steel")]
