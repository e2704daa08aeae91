"""The blacklist reaching the gates: a plate the police add is refused at the next passage, without restart.

三(六)29 is a campaign rule, and a listing only counts for passages after it was made (issue 15 item 14), so these
run under the 2024-25 plan moved to today (a campaign now) and pass vehicles now: the live path, through the
gates' in-memory copy of the list."""

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from gate_service.config import Settings
from gate_service.policy import PLANS_DIR
from tests.passages.conftest import _clauses, _pass


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    today = date.today()
    start, end = today - timedelta(days=10), today + timedelta(days=30)
    text = (Path(PLANS_DIR) / "linfen-2024-25.toml").read_text(encoding="utf-8")
    text = text.replace('id = "linfen-2024-25"', 'id = "campaign-now"', 1)
    text = text.replace("effective_from = 2024-10-01", f"effective_from = {start}", 1)
    text = text.replace("effective_until = 2025-12-31", f"effective_until = {end}", 1)
    text = text.replace("campaign = { from = 2024-10-01, until = 2025-03-31 }",
                        f"campaign = {{ from = {start}, until = {end} }}", 1)
    path = tmp_path / "campaign-now.toml"
    path.write_text(text, encoding="utf-8")
    return replace(settings, policy_paths=(path,))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


async def test_police_add_is_refused_at_a_city_checkpoint_and_revoke_lifts_it(client, world, token):
    police = await token("police")
    allowed = await _pass(client, world, "city-1", "晋L12345D", at=_now())  # an electric lorry: admitted
    assert allowed["decision"] == "allow"
    resp = await client.post("/api/v1/blacklist", json={"plate": "晋L12345D", "reason": "obd_tampering",
                                                        "note": "路检 OBD 篡改"}, headers=police)
    assert resp.status == 201, await resp.text()
    refused = await _pass(client, world, "city-1", "晋L12345D", at=_now())
    assert refused["decision"] == "deny"
    assert refused["blacklisted"] is True
    assert "三(六)29" in _clauses(refused)
    resp = await client.request("DELETE", "/api/v1/blacklist/晋L12345D", json={"reason": "复检合格"}, headers=police)
    assert resp.status == 200, await resp.text()
    again = await _pass(client, world, "city-1", "晋L12345D", at=_now())
    assert again["decision"] == "allow"
    assert "三(六)29" not in _clauses(again)


async def test_blacklist_applies_at_enterprise_gates_by_policy_setting(client, world, token):
    police = await token("police")
    await client.post("/api/v1/blacklist", json={"plate": "晋L12345D", "reason": "over_limit"}, headers=police)
    answer = await _pass(client, world, "g-a", "晋L12345D", at=_now())
    assert answer["decision"] == "deny"
    assert "三(六)29" in _clauses(answer)


async def test_entry_stops_applying_after_valid_until(client, world, token, app):
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
