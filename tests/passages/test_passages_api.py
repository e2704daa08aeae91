"""POST /gates/{id}/passages end to end: registry + policy + ledger, with a real database."""

import asyncpg
import pytest

from gate_service import keys
from gate_service.ledger import store as ledger
from tests.passages.conftest import CAMPAIGN_DAY, _clauses, _pass


async def test_development_zone_late_retrofit_denies_diesel_and_admits_electric(client, world):
    diesel = await _pass(client, world, "g-late", "晋LA1234")
    assert diesel["decision"] == "deny"
    assert "三(一)3" in _clauses(diesel)
    assert all(r["message"] for r in diesel["reasons"])
    assert diesel["vehicle"]["emission_stage"] == 5
    electric = await _pass(client, world, "g-late", "晋L12345D")
    assert electric["decision"] == "allow"
    # The same diesel truck after the campaign (2025-04-01) is no longer refused by the zone rule.
    after = await _pass(client, world, "g-late", "晋LA1234", at="2025-04-01T09:00:00+08:00")
    assert "三(一)3" not in _clauses(after)


async def test_guo3_diesel_is_denied_everywhere(client, world):
    for gate in ("g-a", "city-1", "g-late"):
        answer = await _pass(client, world, gate, "晋LC3333")
        assert answer["decision"] == "deny", (gate, answer)


async def test_city_checkpoint_denies_fuel_logistics(client, world):
    answer = await _pass(client, world, "city-1", "晋LK5678")
    assert answer["decision"] == "deny"
    assert _clauses(answer) & {"三(一)3", "三(三)15"}


async def test_orange_alert_denies_guo4_at_key_industry(client, world, token):
    ecology = await token("ecology")
    before = await _pass(client, world, "g-a", "晋LB4444", at="2024-12-01T10:00:00+08:00")
    resp = await client.post("/api/v1/alerts", json={"level": "orange", "starts_at": "2024-12-02T00:00:00+08:00",
                                                     "ends_at": "2024-12-05T00:00:00+08:00"}, headers=ecology)
    assert resp.status == 201, await resp.text()
    during = await _pass(client, world, "g-a", "晋LB4444", at="2024-12-03T10:00:00+08:00")
    assert during["alert_level"] == "orange"
    assert during["decision"] == "deny"
    assert "三(三)15" in _clauses(during)
    assert "三(三)15" not in _clauses(before)
    level = await (await client.get("/api/v1/alerts?at=2024-12-03T10:00:00%2B08:00", headers=ecology)).json()
    assert level["level"] == "orange"


async def test_unregistered_vehicle_at_enterprise_gate_is_told_to_register(client, world):
    answer = await _pass(client, world, "g-a", "晋LZ0001", plate_color="yellow")
    assert answer["decision"] == "deny"
    assert answer["vehicle"] is None
    assert any("登记" in r["message"] for r in answer["reasons"])


async def test_client_ref_retry_records_once(client, world, app):
    first = await _pass(client, world, "g-a", "晋L12345D", client_ref="kiosk-42")
    again = await _pass(client, world, "g-a", "晋L12345D", client_ref="kiosk-42")
    assert again["passage_id"] == first["passage_id"]
    assert again.get("replayed") is True
    count = await app[keys.POOL].fetchval("SELECT count(*) FROM passages WHERE gate_id = 'g-a'")
    assert count == 1


async def test_kiosk_is_bound_to_its_gate_and_time_window(client, world, token):
    kiosk = await token("kiosk", gate_id="g-a")
    other = await client.post("/api/v1/gates/g-late/passages", json={"plate": "晋L12345D", "direction": "in"},
                              headers=kiosk)
    assert other.status == 403
    ok = await client.post("/api/v1/gates/g-a/passages", json={"plate": "晋L12345D", "direction": "in"},
                           headers=kiosk)
    assert ok.status == 201
    old = await client.post("/api/v1/gates/g-a/passages", json={"plate": "晋L12345D", "direction": "in",
                                                                "at": CAMPAIGN_DAY}, headers=kiosk)
    assert old.status == 422 and (await old.json())["error"]["code"] == "time_too_old"
    future = await client.post("/api/v1/gates/g-a/passages", json={"plate": "晋L12345D", "direction": "in",
                                                                   "at": "2099-01-01T00:00:00+08:00"}, headers=kiosk)
    assert future.status == 422 and (await future.json())["error"]["code"] == "time_in_future"
    naive = await client.post("/api/v1/gates/g-a/passages", json={"plate": "晋L12345D", "direction": "in",
                                                                  "at": "2024-11-15T09:30:00"}, headers=kiosk)
    assert naive.status == 422


async def test_bad_inputs(client, world):
    for body, code in [
        ({"plate": "晋LA1234", "direction": "sideways"}, "unknown_value"),
        ({"plate": "NOPE", "direction": "in"}, "invalid_plate"),
        ({"direction": "in"}, "missing_field"),
        ({"plate": "晋LA1234", "direction": "in", "tonnes": -1}, "validation_failed"),
    ]:
        resp = await client.post("/api/v1/gates/g-a/passages", json=body, headers=world)
        assert resp.status == 422, body
        assert (await resp.json())["error"]["code"] == code
    missing = await client.post("/api/v1/gates/nope/passages", json={"plate": "晋LA1234", "direction": "in"},
                                headers=world)
    assert missing.status == 404


async def test_override_is_a_new_row_pointing_at_the_first(client, world, app):
    denied = await _pass(client, world, "g-late", "晋LA1234")
    override = await _pass(client, world, "g-late", "晋LA1234", overrides=denied["passage_id"],
                           override_reason="应急抢险物资运输,经值班领导批准")
    assert override["decision"] == "allow"
    assert override["overrides"] == denied["passage_id"]
    rows = await app[keys.POOL].fetch("SELECT decision, source FROM passages ORDER BY gate_seq")
    assert [(r["decision"], r["source"]) for r in rows] == [("deny", "manual"), ("allow", "override")]


async def test_ledger_chain_detects_edit_and_deletion(client, world, app):
    for plate in ("晋LA1234", "晋L12345D", "晋LB4444", "晋LK5678"):
        await _pass(client, world, "g-a", plate)
    pool = app[keys.POOL]
    async with pool.acquire() as conn:
        checked, breaks = await ledger.verify(conn)
        assert (checked, breaks) == (4, [])
        # Someone with database superuser rights bypasses the append-only trigger and edits a row.
        await conn.execute("ALTER TABLE passages DISABLE TRIGGER passages_append_only")
        await conn.execute("UPDATE passages SET tonnes = 99.0 WHERE gate_seq = 2")
        _, breaks = await ledger.verify(conn)
        assert [(b.gate_id, b.seq) for b in breaks] == [("g-a", 2)]
        assert "changed" in breaks[0].problem
        await conn.execute("DELETE FROM passages WHERE gate_seq = 3")
        _, breaks = await ledger.verify(conn)
        assert breaks[0].seq == 2  # the edit is still the first break


async def test_ledger_chain_detects_deleted_last_row_and_refuses_updates(client, world, app):
    for plate in ("晋LA1234", "晋L12345D", "晋LB4444"):
        await _pass(client, world, "g-a", plate)
    pool = app[keys.POOL]
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM passages WHERE gate_seq = 3")
        await conn.execute("ALTER TABLE passages DISABLE TRIGGER passages_append_only")
        await conn.execute("DELETE FROM passages WHERE gate_seq = 3")
        _, breaks = await ledger.verify(conn)
        assert breaks and "missing" in breaks[0].problem
        await conn.execute("DELETE FROM passages WHERE gate_seq = 1")
        _, breaks = await ledger.verify(conn)
        assert breaks[0].seq == 2 and "missing" in breaks[0].problem


async def test_passage_list_and_exports(client, world, token):
    await _pass(client, world, "g-late", "晋LA1234", cargo="铁矿石", tonnes=32.45)
    await _pass(client, world, "g-a", "晋L12345D")
    ecology = await token("ecology")
    listing = await (await client.get("/api/v1/passages?from=2024-11-15&to=2024-11-15", headers=ecology)).json()
    assert listing["count"] == 2
    mine = await token("enterprise", enterprise_id="e-a")
    own = await (await client.get("/api/v1/passages", headers=mine)).json()
    assert {p["gate_id"] for p in own["passages"]} == {"g-a"}
    other = await client.get("/api/v1/passages?enterprise_id=e-late", headers=mine)
    assert other.status == 403
    csv = await client.get("/api/v1/passages?format=csv&enterprise_id=e-late", headers=ecology)
    raw = await csv.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("进出时间,进出方向")
    assert "晋LA1234" in text and "禁止通行" in text and "32.5" in text
    import io

    from openpyxl import load_workbook

    xlsx = await (await client.get("/api/v1/passages?format=xlsx", headers=ecology)).read()
    sheet = load_workbook(io.BytesIO(xlsx)).active
    assert sheet.cell(1, 5).value == "车牌号码"
    plates = {sheet.cell(r, 5).value for r in range(2, sheet.max_row + 1)}
    assert plates == {"晋LA1234", "晋L12345D"}
