"""Issue 15 item 14: a passage is judged by the blacklist, registry and alerts as they were at its moment."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gate_service import keys
from tests.passages.conftest import CAMPAIGN_DAY, _clauses, _pass

PLATE = "晋L12345D"  # an electric lorry: only the blacklist refuses it at the city checkpoint


async def _list(client, token, plate=PLATE):  # type: ignore[no-untyped-def]
    police = await token("police")
    resp = await client.post("/api/v1/blacklist", json={"plate": plate, "reason": "obd_tampering"}, headers=police)
    assert resp.status == 201, await resp.text()
    return police


async def test_a_listing_made_today_does_not_deny_a_passage_of_2024(client, world, token, app) -> None:  # type: ignore[no-untyped-def]
    await _list(client, token)
    past = await _pass(client, world, "city-1", PLATE)  # CAMPAIGN_DAY, 2024-11-15, inside the campaign
    assert past["decision"] == "allow" and past["blacklisted"] is False, past
    # Today the listing is a fact (the base policy, out of campaign, flags no ban but the row says so).
    now = await _pass(client, world, "city-1", PLATE, at=datetime.now(timezone.utc).isoformat())
    assert now["blacklisted"] is True


async def test_a_listing_of_the_moment_denies_even_if_revoked_since(client, world, token, app) -> None:  # type: ignore[no-untyped-def]
    police = await _list(client, token)
    pool = app[keys.POOL]
    # The entry as if the police had made it on 2024-10-01 (an older list, brought in).
    await pool.execute("UPDATE blacklist_entries SET added_at = '2024-10-01T00:00:00+08:00' WHERE plate = $1", PLATE)
    refused = await _pass(client, world, "city-1", PLATE)
    assert refused["decision"] == "deny" and refused["blacklisted"] is True
    assert "三(六)29" in _clauses(refused)
    # Revoked today: the 2024 passage was still under it; now it is not.
    resp = await client.request("DELETE", f"/api/v1/blacklist/{PLATE}", json={"reason": "复检合格"}, headers=police)
    assert resp.status == 200
    again = await _pass(client, world, "city-1", PLATE, at="2024-11-20T09:00:00+08:00")
    assert again["decision"] == "deny" and again["blacklisted"] is True
    now = await _pass(client, world, "city-1", PLATE, at=datetime.now(timezone.utc).isoformat())
    assert now["blacklisted"] is False


async def test_the_registry_as_it_was(client, world, app) -> None:  # type: ignore[no-untyped-def]
    pool = app[keys.POOL]
    # 晋LC3333 is a 国三 diesel truck (world); an hour ago... it was re-registered as electric (a retrofit).
    hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    await pool.execute("UPDATE vehicle_versions SET valid_from = $1 WHERE plate = '晋LC3333'",
                       hour_ago - timedelta(days=1))
    resp = await client.put("/api/v1/vehicles/晋LC3333", headers=world, json={
        "plate_color": "yellow-green", "fuel_type": "electric", "vehicle_class": "heavy_truck"})
    assert resp.status == 200
    versions = await pool.fetch("SELECT fuel_type, valid_to FROM vehicle_versions WHERE plate = '晋LC3333' "
                                "ORDER BY valid_from")
    assert [(v["fuel_type"], v["valid_to"] is None) for v in versions] == [("diesel", False), ("electric", True)]
    before = await _pass(client, world, "city-1", "晋LC3333", at=hour_ago.isoformat())
    assert before["decision"] == "deny" and before["vehicle"]["fuel_type"] == "diesel"
    now = await _pass(client, world, "city-1", "晋LC3333", at=datetime.now(timezone.utc).isoformat())
    assert now["decision"] == "allow" and now["vehicle"]["fuel_type"] == "electric"
    # A vehicle first registered after the moment keeps its record for that moment (not "unregistered").
    old = await _pass(client, world, "city-1", "晋LA1234")
    assert old["vehicle"] is not None and old["vehicle"]["emission_stage"] == 5
    # Only extra changing (a document photo) writes no new version.
    await pool.execute("""UPDATE vehicles SET extra = '{"owner": "x"}' WHERE plate = '晋LC3333'""")
    assert await pool.fetchval("SELECT count(*) FROM vehicle_versions WHERE plate = '晋LC3333'") == 2


async def test_an_alert_cancelled_later_was_in_force(client, world, app) -> None:  # type: ignore[no-untyped-def]
    resp = await client.post("/api/v1/alerts", headers=world, json={
        "level": "orange", "starts_at": "2024-11-15T00:00:00+08:00", "ends_at": "2024-11-16T00:00:00+08:00"})
    assert resp.status == 201
    pool = app[keys.POOL]
    # Lifted early, at noon on the 15th (the cancellation comes from the platform in production).
    await pool.execute("UPDATE alerts SET cancelled_at = '2024-11-15T12:00:00+08:00'")
    morning = await _pass(client, world, "g-late", "晋LB4444", at=CAMPAIGN_DAY)  # 09:30
    afternoon = await _pass(client, world, "g-late", "晋LB4444", at="2024-11-15T15:00:00+08:00")
    assert morning["alert_level"] == "orange" and afternoon["alert_level"] is None
    at = await (await client.get("/api/v1/alerts", params={"at": CAMPAIGN_DAY}, headers=world)).json()
    assert at["level"] == "orange" and len(at["alerts"]) == 1
