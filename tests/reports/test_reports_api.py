"""Clean-transport reports end to end: a hand-built ledger through the passages endpoint, exact figures."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook

from gate_service import keys
from gate_service.reports import service

ELECTRIC, DIESEL, OLD_DIESEL, PHEV, UNREGISTERED = "晋L12345D", "晋LA1234", "晋LC3333", "晋L23456F", "晋LX0000"
NOV_DEC = "from=2024-11-01&to=2024-12-31"


async def _put(client, headers, path, body):
    resp = await client.put(path, json=body, headers=headers)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


async def _pass(client, headers, gate, plate, at, direction="in", tonnes=None, **extra):
    body = {"plate": plate, "direction": direction, "at": at, **extra}
    if tonnes is not None:
        body["tonnes"] = tonnes
    resp = await client.post(f"/api/v1/gates/{gate}/passages", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


@pytest.fixture
async def registry(client, admin):
    enterprises = {
        # Retrofit done before 2024-09-30: the zone ban does not apply, so diesel trucks are allowed.
        "e-steel": {"name": "襄汾某钢铁", "industry": "steel", "county": "襄汾县", "zone_id": "xiangfen",
                    "retrofit_completed_on": "2024-06-01", "grade": "B"},
        "e-coal": {"name": "霍州某煤矿", "industry": "coal", "county": "霍州市", "zone_id": "other",
                   "retrofit_completed_on": None, "grade": "C"},
        "e-far": {"name": "吉县某钢铁", "industry": "steel", "county": "吉县", "zone_id": "other",
                  "retrofit_completed_on": None, "grade": "C"},
    }
    for eid, body in enterprises.items():
        await _put(client, admin, f"/api/v1/enterprises/{eid}", body)
    for gid, eid, zone in (("g-s1", "e-steel", "xiangfen"), ("g-s2", "e-steel", "xiangfen"),
                           ("g-c1", "e-coal", "other"), ("g-f1", "e-far", "other")):
        await _put(client, admin, f"/api/v1/gates/{gid}", {"name": gid, "enterprise_id": eid, "zone_id": zone})
    await _put(client, admin, "/api/v1/gates/city-1", {"name": "检查站", "zone_id": "city"})
    vehicles = {
        ELECTRIC: {"plate_color": "yellow-green", "fuel_type": "electric", "vehicle_class": "heavy_truck"},
        DIESEL: {"plate_color": "yellow", "emission_stage": 5, "fuel_type": "diesel", "vehicle_class": "heavy_truck"},
        OLD_DIESEL: {"plate_color": "yellow", "emission_stage": 3, "fuel_type": "diesel",
                     "vehicle_class": "heavy_truck"},
        PHEV: {"plate_color": "yellow-green", "emission_stage": 6, "fuel_type": "phev", "vehicle_class": "heavy_truck"},
    }
    for plate, body in vehicles.items():
        await _put(client, admin, f"/api/v1/vehicles/{plate}", body)
    return admin


@pytest.fixture
async def ledger(client, registry):
    """The hand-built ledger of e-steel; expected figures are worked out in the tests beside each number."""
    a = registry
    p = _pass
    # November (local days). Row comments: counts as trip / clean trip / tonnes / clean tonnes.
    await p(client, a, "g-s1", ELECTRIC, "2024-11-01T00:00:00+08:00", tonnes=30)    # 1 trip, clean, 30 clean
    await p(client, a, "g-s1", DIESEL, "2024-11-05T10:00:00+08:00", tonnes=25)      # 1 trip, 25
    await p(client, a, "g-s1", ELECTRIC, "2024-11-05T12:00:00+08:00", "out", 40)    # no trip, 40 clean
    denied = await p(client, a, "g-s1", OLD_DIESEL, "2024-11-10T09:00:00+08:00", tonnes=20)  # denied: nothing
    assert denied["decision"] == "deny"
    await p(client, a, "g-s2", DIESEL, "2024-11-30T23:59:59+08:00", tonnes=10)      # 1 trip (Nov), 10
    await p(client, a, "g-s2", PHEV, "2024-11-20T08:00:00+08:00", tonnes=20)        # 1 trip, 20, not clean here
    await p(client, a, "g-s2", ELECTRIC, "2024-11-21T08:00:00+08:00")               # 1 trip, clean, no tonnes
    # December: 00:00 local on the 1st is still November in UTC (and in the UTC partition).
    await p(client, a, "g-s1", ELECTRIC, "2024-12-01T00:00:00+08:00", tonnes=35)    # 1 trip, clean, 35 clean
    await p(client, a, "g-s2", DIESEL, "2024-12-15T10:00:00+08:00", "out", 15.5)    # no trip, 15.5
    # Overrides: the refused unregistered truck is let through once (counts, not clean); a second press of the
    # button and an override of an allowed row count nothing.
    refused = await p(client, a, "g-s1", UNREGISTERED, "2024-12-10T08:00:00+08:00", tonnes=12)
    assert refused["decision"] == "deny"
    why = "应急物资运输,值班领导批准"
    first = await p(client, a, "g-s1", UNREGISTERED, "2024-12-10T08:05:00+08:00", tonnes=12,
                    overrides=refused["passage_id"], override_reason=why)
    assert first["decision"] == "allow"
    # The second press is refused now (409 already_overridden, harden-access): nothing recorded, nothing counted.
    again = await client.post("/api/v1/gates/g-s1/passages", headers=a, json={
        "plate": UNREGISTERED, "direction": "in", "at": "2024-12-10T08:06:00+08:00", "tonnes": 12,
        "overrides": refused["passage_id"], "override_reason": why})
    assert again.status == 409 and (await again.json())["error"]["code"] == "already_overridden"
    allowed = await p(client, a, "g-s1", DIESEL, "2024-12-11T08:00:00+08:00", tonnes=9)  # 1 trip, 9
    await p(client, a, "g-s1", DIESEL, "2024-12-11T08:01:00+08:00", tonnes=9,
            overrides=allowed["passage_id"], override_reason=why)
    # Outside the period, one second either side.
    await p(client, a, "g-s1", ELECTRIC, "2024-10-31T23:59:59+08:00", tonnes=50)
    await p(client, a, "g-s1", ELECTRIC, "2025-01-01T00:00:00+08:00", tonnes=50)
    # A city checkpoint belongs to no enterprise.
    await p(client, a, "city-1", ELECTRIC, "2024-11-11T08:00:00+08:00", tonnes=5)
    # Non-road modes, by month.
    await _put(client, a, "/api/v1/enterprises/e-steel/transport-volumes/2024-11",
               {"rail_tonnes": 100, "conveyor_tonnes": 50})
    await _put(client, a, "/api/v1/enterprises/e-steel/transport-volumes/2024-12", {"waterway_tonnes": 30})
    await _put(client, a, "/api/v1/enterprises/e-steel/transport-volumes/2024-10", {"rail_tonnes": 999})
    return a


async def _report(client, headers, query, status=200):
    resp = await client.get(f"/api/v1/reports/clean-transport?{query}", headers=headers)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_exact_figures_for_one_enterprise(client, ledger):
    r = await _report(client, ledger, f"enterprise_id=e-steel&{NOV_DEC}&as_of=2024-12-31")
    # Trips: Nov 1, 5, 20, 21, 30 (23:59:59) + Dec 1, 10 (override), 11 = 8; clean: Nov 1, 21, Dec 1 = 3.
    assert (r["trips"], r["clean_trips"], r["ratio_trips"]) == (8, 3, 0.375)
    # Road tonnes: Nov 30+25+40+10+20 = 125, Dec 35+15.5+12+9 = 71.5; clean road: 30+40+35 = 105.
    # Non-road: Nov 100 rail + 50 conveyor, Dec 30 waterway (October's 999 is outside).
    assert r["road_tonnes"] == 196.5 and r["clean_road_tonnes"] == 105.0
    assert (r["rail_tonnes"], r["waterway_tonnes"], r["pipeline_tonnes"], r["conveyor_tonnes"]) == (100, 30, 0, 50)
    assert r["tonnes"] == 376.5 and r["clean_tonnes"] == 285.0
    assert r["ratio_tonnes"] == round(285 / 376.5, 4)
    assert r["target"] == 0.6 and r["basis"] == "tonnes" and r["met"] is True
    assert r["enterprise_id"] == "e-steel" and r["from"] == "2024-11-01" and r["to"] == "2024-12-31"
    nov, dec = r["months"]
    assert (nov["month"], nov["trips"], nov["clean_trips"], nov["tonnes"], nov["clean_tonnes"]) == \
        ("2024-11", 5, 2, 275.0, 220.0)
    assert (dec["month"], dec["trips"], dec["clean_trips"], dec["tonnes"], dec["clean_tonnes"]) == \
        ("2024-12", 3, 1, 101.5, 65.0)
    assert nov["ratio_tonnes"] == 0.8 and nov["target"] == 0.6 and nov["met"] is True
    # The period is over: nothing projected beyond the figures, and the tonnage target is met.
    proj = r["projection"]
    assert proj["status"] == "finished" and proj["days_remaining"] == 0
    assert proj["trips"] == 8 and proj["clean_trips_needed"] == 0


async def test_month_edges_are_local_midnight(client, ledger):
    oct_ = await _report(client, ledger, "enterprise_id=e-steel&from=2024-10-31&to=2024-10-31")
    assert (oct_["trips"], oct_["clean_trips"], oct_["road_tonnes"]) == (1, 1, 50.0)
    day = await _report(client, ledger, "enterprise_id=e-steel&from=2024-11-30&to=2024-11-30")
    assert (day["trips"], day["road_tonnes"]) == (1, 10.0)
    dec1 = await _report(client, ledger, "enterprise_id=e-steel&from=2024-12-01&to=2024-12-01")
    assert (dec1["trips"], dec1["clean_trips"], dec1["road_tonnes"]) == (1, 1, 35.0)
    jan = await _report(client, ledger, "enterprise_id=e-steel&from=2025-01-01&to=2025-01-01")
    assert jan["trips"] == 1


async def test_partial_month_counts_non_road_pro_rata(client, ledger):
    # 2024-11-16..11-30 is 15 of November's 30 days: half of the 150 t of rail and conveyor.
    r = await _report(client, ledger, "enterprise_id=e-steel&from=2024-11-16&to=2024-11-30")
    assert (r["rail_tonnes"], r["conveyor_tonnes"], r["non_road_tonnes"]) == (50.0, 25.0, 75.0)
    # Road: Nov 20 phev 20 t, Nov 21 electric (no tonnes), Nov 30 diesel 10 t.
    assert (r["trips"], r["clean_trips"], r["road_tonnes"], r["tonnes"], r["clean_tonnes"]) == \
        (3, 1, 30.0, 105.0, 75.0)


async def test_ratios_null_without_denominator_and_trips_basis(client, ledger, registry):
    empty = await _report(client, ledger, "enterprise_id=e-coal&from=2025-01-01&to=2025-12-31&as_of=2025-03-01")
    assert empty["trips"] == 0 and empty["ratio_trips"] is None and empty["ratio_tonnes"] is None
    assert empty["target"] == 0.8 and empty["met"] is None
    # Trips without tonnage: met is judged on trips. 4 of 5 clean = 0.8 meets 0.8 exactly.
    for i, plate in enumerate([ELECTRIC] * 4 + [DIESEL]):
        await _pass(client, registry, "g-c1", plate, f"2025-01-0{i + 2}T09:00:00+08:00")
    r = await _report(client, ledger, "enterprise_id=e-coal&from=2025-01-01&to=2025-12-31&as_of=2025-03-01")
    assert (r["trips"], r["clean_trips"], r["ratio_trips"], r["tonnes"], r["ratio_tonnes"]) == (5, 4, 0.8, 0, None)
    assert r["basis"] == "trips" and r["met"] is True


async def test_targets_by_industry_county_and_year(client, app, ledger):
    policies = app[keys.POLICIES]
    assert policies.target_for("steel", "襄汾县", date(2024, 1, 1), date(2024, 12, 31)) == 0.60
    assert policies.target_for("cement", "尧都区", date(2024, 11, 1), date(2024, 11, 30)) == 0.60
    assert policies.target_for("coal", "霍州市", date(2025, 1, 1), date(2025, 12, 31)) == 0.80
    assert policies.target_for("non_ferrous", None, date(2025, 6, 1), date(2025, 6, 30)) == 0.80
    assert policies.target_for("steel", "吉县", date(2024, 1, 1), date(2024, 12, 31)) is None
    assert policies.target_for("coal", "霍州市", date(2024, 1, 1), date(2024, 12, 31)) is None
    far = await _report(client, ledger, "enterprise_id=e-far&from=2024-01-01&to=2024-12-31")
    assert far["target"] is None and far["met"] is None
    coal = await _report(client, ledger, "enterprise_id=e-coal&from=2025-01-01&to=2025-12-31")
    assert coal["target"] == 0.8
    # A period straddling the end of 2024 lies in no window of the plan's; the standing 60% (base.toml, issue 15
    # item 15) covers it, and each month says which plan set its target.
    steel = await _report(client, ledger, "enterprise_id=e-steel&from=2024-12-01&to=2025-01-31")
    assert (steel["target"], steel["target_plan"]) == (0.6, "base")
    assert [(m["target"], m["target_plan"]) for m in steel["months"]] == [(0.6, "linfen-2024-25"), (0.6, "base")]


async def test_rollups_equal_raw_recomputation(client, app, ledger):
    pool = app[keys.POOL]
    q = "SELECT enterprise_id, day, trips, clean_trips, tonnes, clean_tonnes FROM {} ORDER BY 1, 2"
    rolled = [tuple(r) for r in await pool.fetch(q.format("transport_daily"))]
    raw = [tuple(r) for r in await pool.fetch(q.format("transport_daily_raw('2024-01-01', '2025-12-31')"))]
    assert rolled == raw and len(rolled) == 11
    # The report through either source is the same answer.
    target_for = app[keys.POLICIES].target_for
    from datetime import datetime, timezone
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    a = await service.reports(pool, target_for, date(2024, 10, 1), date(2025, 1, 31), now=now)
    b = await service.reports(pool, target_for, date(2024, 10, 1), date(2025, 1, 31), now=now, source="raw")
    assert a == b
    # Repair: wreck a day, rebuild the range, get the same rows back.
    await pool.execute("UPDATE transport_daily SET trips = 999 WHERE day = '2024-11-05'")
    await pool.execute("DELETE FROM transport_daily WHERE day = '2024-12-01'")
    written = await pool.fetchval("SELECT rebuild_transport_daily('2024-11-01', '2024-12-31')")
    assert written == 9
    assert [tuple(r) for r in await pool.fetch(q.format("transport_daily"))] == raw


async def test_city_wide_rows_sort_and_filters(client, ledger, registry):
    for i in range(2):
        await _pass(client, registry, "g-f1", DIESEL, f"2024-11-0{i + 2}T09:00:00+08:00", tonnes=10)
    await _pass(client, registry, "g-c1", ELECTRIC, "2024-11-02T09:00:00+08:00", tonnes=10)
    await _pass(client, registry, "g-c1", DIESEL, "2024-11-03T09:00:00+08:00", tonnes=30)
    body = await _report(client, ledger, NOV_DEC)
    assert body["count"] == 3
    # Lowest share first: e-far 0.0, e-coal 0.25, e-steel 0.757.
    assert [r["enterprise_id"] for r in body["rows"]] == ["e-far", "e-coal", "e-steel"]
    assert "months" not in body["rows"][0]
    desc = await _report(client, ledger, f"{NOV_DEC}&sort=ratio_trips&order=desc&months=true")
    assert [r["enterprise_id"] for r in desc["rows"]] == ["e-coal", "e-steel", "e-far"]
    assert len(desc["rows"][0]["months"]) == 2
    assert body["totals"]["trips"] == 8 + 2 + 2 and body["totals"]["enterprises"] == 3
    by_county = await _report(client, ledger, f"{NOV_DEC}&county=襄汾县")
    assert [r["enterprise_id"] for r in by_county["rows"]] == ["e-steel"]
    by_zone = await _report(client, ledger, f"{NOV_DEC}&zone=other")
    assert {r["enterprise_id"] for r in by_zone["rows"]} == {"e-coal", "e-far"}
    by_industry = await _report(client, ledger, f"{NOV_DEC}&industry=steel&sort=enterprise_id")
    assert [r["enterprise_id"] for r in by_industry["rows"]] == ["e-far", "e-steel"]
    met = await _report(client, ledger, f"{NOV_DEC}&met=true")
    assert [r["enterprise_id"] for r in met["rows"]] == ["e-steel"]
    no_target = await _report(client, ledger, f"{NOV_DEC}&met=none")
    assert {r["enterprise_id"] for r in no_target["rows"]} == {"e-coal", "e-far"}
    await _report(client, ledger, "from=2024-12-31&to=2024-11-01", status=422)


async def test_xlsx_export_cell_by_cell(client, ledger):
    resp = await client.get(f"/api/v1/reports/clean-transport?{NOV_DEC}&format=xlsx&sort=enterprise_id",
                            headers=ledger)
    assert resp.status == 200
    assert resp.content_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = load_workbook(io.BytesIO(await resp.read()))
    assert book.sheetnames == ["汇总", "月度"]
    summary = book["汇总"]
    header = [c.value for c in summary[1]]
    assert header[:13] == ["企业编号", "企业名称", "行业", "县(市、区)", "所在区域", "起始日期", "截止日期",
                           "进厂车次", "清洁运输车次", "车次清洁运输比例", "运输总量(吨)", "清洁运输量(吨)",
                           "运输量清洁运输比例"]
    rows = {r[0].value: r for r in summary.iter_rows(min_row=2)}
    assert list(rows) == ["e-coal", "e-far", "e-steel", "合计"]
    steel = rows["e-steel"]
    col = {h: i for i, h in enumerate(header)}
    assert steel[col["企业名称"]].value == "襄汾某钢铁"
    assert steel[col["行业"]].value == "钢铁"
    assert steel[col["县(市、区)"]].value == "襄汾县"
    assert steel[col["所在区域"]].value == "襄汾经济技术开发区"
    assert steel[col["起始日期"]].value.date() == date(2024, 11, 1)
    assert steel[col["进厂车次"]].value == 8
    assert steel[col["清洁运输车次"]].value == 3
    cell = steel[col["车次清洁运输比例"]]
    assert cell.value == 0.375 and cell.number_format == "0.0%"
    assert steel[col["运输总量(吨)"]].value == 376.5
    assert steel[col["运输量清洁运输比例"]].number_format == "0.0%"
    assert steel[col["铁路(吨)"]].value == 100
    assert steel[col["考核口径"]].value == "运输量"
    target = steel[col["目标比例"]]
    assert target.value == 0.6 and target.number_format == "0.0%"
    assert steel[col["是否达标"]].value == "达标"
    assert rows["e-far"][col["是否达标"]].value == "无考核目标"
    assert rows["e-far"][col["车次清洁运输比例"]].value is None  # no trips: an empty cell, not 0
    assert rows["合计"][col["进厂车次"]].value == 8
    months = book["月度"]
    mheader = [c.value for c in months[1]]
    assert mheader[:3] == ["企业编号", "企业名称", "月份"]
    mrows = [[c.value for c in r] for r in months.iter_rows(min_row=2)]
    assert len(mrows) == 6  # 3 enterprises x 2 months
    nov = next(r for r in mrows if r[0] == "e-steel" and r[2] == "2024-11")
    mcol = {h: i for i, h in enumerate(mheader)}
    assert nov[mcol["进厂车次"]] == 5 and nov[mcol["清洁运输车次"]] == 2
    assert nov[mcol["运输总量(吨)"]] == 275 and nov[mcol["清洁运输量(吨)"]] == 220
    assert nov[mcol["运输量清洁运输比例"]] == 0.8 and nov[mcol["非公路运输量(吨)"]] == 150
    assert months.cell(row=2, column=mcol["车次清洁运输比例"] + 1).number_format == "0.0%"


async def test_csv_export_has_bom_and_chinese_headers(client, ledger):
    resp = await client.get(f"/api/v1/reports/clean-transport?enterprise_id=e-steel&{NOV_DEC}&format=csv",
                            headers=ledger)
    assert resp.status == 200 and resp.content_type == "text/csv"
    raw = await resp.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][0] == "企业编号" and rows[0][9] == "车次清洁运输比例"
    assert rows[1][:10] == ["e-steel", "襄汾某钢铁", "钢铁", "襄汾县", "襄汾经济技术开发区", "2024-11-01",
                            "2024-12-31", "8", "3", "0.375"]
    resp = await client.get(f"/api/v1/reports/clean-transport?enterprise_id=e-steel&{NOV_DEC}&format=csv"
                            "&view=months", headers=ledger)
    months = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert [r[2] for r in months[1:]] == ["2024-11", "2024-12"]


async def test_transport_volumes_put_get_and_audit(client, app, registry, token):
    steel = await token("enterprise", enterprise_id="e-steel")
    path = "/api/v1/enterprises/e-steel/transport-volumes/2024-11"
    resp = await client.put(path, json={"rail_tonnes": 100.04, "pipeline_tonnes": 5}, headers=steel)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert (body["rail_tonnes"], body["pipeline_tonnes"], body["waterway_tonnes"], body["total_tonnes"]) == \
        (100.0, 5.0, 0.0, 105.0)
    assert body["reported_role"] == "enterprise"
    resp = await client.put(path, json={"rail_tonnes": 80}, headers=registry)
    assert resp.status == 200 and (await resp.json())["pipeline_tonnes"] == 0.0
    listed = await (await client.get("/api/v1/enterprises/e-steel/transport-volumes", headers=steel)).json()
    assert [(v["month"], v["rail_tonnes"]) for v in listed["volumes"]] == [("2024-11", 80.0)]
    one = await client.get(path, headers=await token("ecology"))
    assert one.status == 200 and (await one.json())["reported_by"] == "test-admin"
    audit = await app[keys.POOL].fetch(
        "SELECT detail FROM audit_log WHERE action = 'transport_volumes.put' ORDER BY id")
    assert audit[1]["detail"]["previous"]["rail_tonnes"] == "100.0"
    for bad, code in (({"rail_tonnes": -1}, 422), ({"lorry_tonnes": 1}, 422)):
        assert (await client.put(path, json=bad, headers=steel)).status == code
    assert (await client.put("/api/v1/enterprises/e-steel/transport-volumes/2024-13", json={},
                             headers=steel)).status == 422
    assert (await client.put("/api/v1/enterprises/e-steel/transport-volumes/2999-01", json={},
                             headers=steel)).status == 422
    assert (await client.put("/api/v1/enterprises/nobody/transport-volumes/2024-01", json={},
                             headers=registry)).status == 404


async def test_role_isolation(client, ledger, token):
    steel = await token("enterprise", enterprise_id="e-steel")
    coal = await token("enterprise", enterprise_id="e-coal")
    own = await _report(client, steel, NOV_DEC)  # no enterprise_id: its own report, not the city
    assert own["enterprise_id"] == "e-steel" and own["trips"] == 8
    for path in (f"/api/v1/reports/clean-transport?enterprise_id=e-steel&{NOV_DEC}",
                 f"/api/v1/reports/clean-transport?enterprise_id=e-steel&{NOV_DEC}&format=xlsx",
                 "/api/v1/enterprises/e-steel/transport-volumes",
                 "/api/v1/enterprises/e-steel/transport-volumes/2024-11"):
        resp = await client.get(path, headers=coal)
        assert resp.status == 403, path
        assert (await resp.json())["error"]["code"] == "forbidden_enterprise"
    resp = await client.put("/api/v1/enterprises/e-steel/transport-volumes/2024-11", json={"rail_tonnes": 1},
                            headers=coal)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden_enterprise"
    for role, extra in (("kiosk", {"gate_id": "g-s1"}), ("police", {})):
        headers = await token(role, **extra)
        resp = await client.get(f"/api/v1/reports/clean-transport?{NOV_DEC}", headers=headers)
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden_role"
        resp = await client.get("/api/v1/enterprises/e-steel/transport-volumes", headers=headers)
        assert resp.status == 403
    ecology = await token("ecology")
    assert (await client.put("/api/v1/enterprises/e-steel/transport-volumes/2024-11", json={},
                             headers=ecology)).status == 403
    assert (await _report(client, ecology, NOV_DEC))["count"] == 3
    assert (await client.get(f"/api/v1/reports/clean-transport?{NOV_DEC}")).status == 401
