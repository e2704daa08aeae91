"""Issue 15 item 15: the clean-transport targets do not vanish after 2025; the report says which plan set each."""

from __future__ import annotations

from datetime import date

from gate_service.policy import default_policy_set


def test_base_holds_the_standing_targets_and_says_so():
    base = default_policy_set().base
    by_industry = {(t.ratio, t.industries[0]): t for t in base.targets}
    coal = by_industry[(0.80, "coal")]
    steel = by_industry[(0.60, "steel")]
    assert coal.end is None and coal.start == date(2025, 1, 1) and "non_ferrous" in coal.industries
    assert steel.end is None and "cement" in steel.industries and "襄汾县" in steel.counties
    assert all("解读" in t.note for t in base.targets)  # a reading, and the data says so


def test_the_plan_is_asked_first_and_the_answer_names_it():
    ps = default_policy_set()
    plan = ps.target_for("coal", "霍州市", date(2025, 1, 1), date(2025, 12, 31))
    standing = ps.target_for("coal", "霍州市", date(2026, 1, 1), date(2026, 12, 31))
    assert (plan, plan.plan) == (0.80, "linfen-2024-25")
    assert (standing, standing.plan) == (0.80, "base")
    assert ps.target_for("steel", "吉县", date(2026, 1, 1), date(2026, 12, 31)) is None  # not a Fen county


async def test_reports_in_2026_carry_targets_and_their_plan(client, admin):  # type: ignore[no-untyped-def]
    for eid, industry, county in (("e-coal", "coal", "霍州市"), ("e-steel", "steel", "襄汾县"),
                                  ("e-far", "steel", "吉县")):
        resp = await client.put(f"/api/v1/enterprises/{eid}", headers=admin,
                                json={"name": eid, "industry": industry, "county": county, "zone_id": "other"})
        assert resp.status == 201
    resp = await client.get("/api/v1/reports/clean-transport?from=2026-01-01&to=2026-12-31&months=true",
                            headers=admin)
    assert resp.status == 200, await resp.text()
    rows = {r["enterprise_id"]: r for r in (await resp.json())["rows"]}
    assert (rows["e-coal"]["target"], rows["e-coal"]["target_plan"]) == (0.8, "base")
    assert (rows["e-steel"]["target"], rows["e-steel"]["target_plan"]) == (0.6, "base")
    assert (rows["e-far"]["target"], rows["e-far"]["target_plan"]) == (None, None)
    # Every month too: the bureau chart draws its target line from the months' targets.
    assert {m["target"] for m in rows["e-coal"]["months"]} == {0.8}
    one = await (await client.get("/api/v1/reports/clean-transport?enterprise_id=e-coal&from=2026-01-01"
                                  "&to=2026-06-30", headers=admin)).json()
    assert one["target_plan"] == "base" and all(m["target_plan"] == "base" for m in one["months"])
