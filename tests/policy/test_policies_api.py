"""GET /api/v1/policies: the plan files as loaded, with the one in force at a moment."""


async def test_policies_show_the_plan_in_force_with_its_rules_and_clauses(client, token, admin):
    await client.put("/api/v1/enterprises/e-1", headers=admin, json={"name": "某钢铁", "industry": "steel"})
    enterprise = await token("enterprise", enterprise_id="e-1")  # every role may read the rules it is judged by
    resp = await client.get("/api/v1/policies?at=2024-12-01T10:00:00%2B08:00", headers=enterprise)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["in_force"] == "linfen-2024-25"
    by_id = {p["id"]: p for p in body["policies"]}
    plan = by_id["linfen-2024-25"]
    assert plan["in_force"] is True and by_id["base"]["in_force"] is False
    assert plan["document"] == "临政办发〔2024〕40号"
    assert (plan["effective_from"], plan["kind"]) == ("2024-10-01", "plan")
    rules = {r["id"]: r for r in plan["rules"]}
    guo3 = rules["retired-guo3-diesel-truck"]
    assert guo3["clause"] == "三(一)3" and guo3["effect"] == "deny" and guo3["message"]
    assert {"三(三)15", "三(六)29"} <= {r["clause"] for r in plan["rules"]}
    assert {t["ratio"] for t in plan["targets"]} >= {0.6, 0.8}
    assert plan["periods"] and all(s["start"] <= s["end"] for spans in plan["periods"].values() for s in spans)


async def test_days_no_plan_covers_are_judged_by_the_base_policy(client, token, admin):
    await client.put("/api/v1/gates/g-1", headers=admin, json={"name": "1号门", "zone_id": "city"})
    kiosk = await token("kiosk", gate_id="g-1")
    body = await (await client.get("/api/v1/policies?at=2026-11-29T09:00:00%2B08:00", headers=kiosk)).json()
    assert body["in_force"] == "base"
    assert (await client.get("/api/v1/policies")).status == 401
    bad = await client.get("/api/v1/policies?at=yesterday", headers=kiosk)
    assert bad.status == 422 and (await bad.json())["error"]["field"] == "at"
