"""The blacklist reaching the gates: a plate the police add is refused at the next passage, without restart."""

from tests.passages.conftest import _clauses, _pass


async def test_police_add_is_refused_at_a_city_checkpoint_and_revoke_lifts_it(client, world, token):
    police = await token("police")
    allowed = await _pass(client, world, "city-1", "晋L12345D")  # an electric lorry: admitted in the city
    assert allowed["decision"] == "allow"
    resp = await client.post("/api/v1/blacklist", json={"plate": "晋L12345D", "reason": "obd_tampering",
                                                        "note": "路检 OBD 篡改"}, headers=police)
    assert resp.status == 201, await resp.text()
    refused = await _pass(client, world, "city-1", "晋L12345D")
    assert refused["decision"] == "deny"
    assert refused["blacklisted"] is True
    assert "三(六)29" in _clauses(refused)
    resp = await client.request("DELETE", "/api/v1/blacklist/晋L12345D", json={"reason": "复检合格"}, headers=police)
    assert resp.status == 200, await resp.text()
    again = await _pass(client, world, "city-1", "晋L12345D")
    assert again["decision"] == "allow"
    assert "三(六)29" not in _clauses(again)


async def test_blacklist_applies_at_enterprise_gates_by_policy_setting(client, world, token):
    police = await token("police")
    await client.post("/api/v1/blacklist", json={"plate": "晋L12345D", "reason": "over_limit"}, headers=police)
    answer = await _pass(client, world, "g-a", "晋L12345D")
    assert answer["decision"] == "deny"
    assert "三(六)29" in _clauses(answer)


async def test_entry_stops_applying_after_valid_until(client, world, token, app):
    from datetime import date, datetime, timedelta, timezone

    import blacklist

    police = await token("police")
    last_day = date.today() + timedelta(days=30)
    resp = await client.post("/api/v1/blacklist", json={"plate": "晋L12345D", "reason": "over_limit",
                                                        "valid_until": last_day.isoformat()}, headers=police)
    assert resp.status == 201, await resp.text()
    service = app[blacklist.APP_KEY]
    assert service.lookup("晋L12345D", datetime.now(timezone.utc)) is not None
    after = datetime.combine(last_day + timedelta(days=2), datetime.min.time(), timezone.utc)
    assert service.lookup("晋L12345D", after) is None
