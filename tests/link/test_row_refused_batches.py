"""A batch row the platform's database refuses, driven over HTTP against the real app and PostgreSQL: the
answer, what is merged and kept apart, a resend, and the bureau's resolve past the refused row."""

from __future__ import annotations

from gate_service import keys as app_keys
from tests.link.test_batches import GATE, _site, chain

# A platform-side rule the site's database does not have (a trigger, as a province's data rule might be).
RULE = """
CREATE FUNCTION test_refuse_plate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.plate = '晋LA0006' THEN RAISE EXCEPTION 'plate % is not accepted here', NEW.plate; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_refuse_plate BEFORE INSERT ON passages FOR EACH ROW EXECUTE FUNCTION test_refuse_plate();
"""


async def test_refused_row_is_answered_422_and_kept_apart_with_the_later_rows(client, app, admin, tmp_path):
    site = await _site(client, app, admin, tmp_path)
    pool = app[app_keys.POOL]
    await pool.execute(RULE)
    rows = chain(10)
    status, out = await site.send(rows)
    assert status == 422, out
    err = out["error"]
    assert err["code"] == "row_refused" and err["seq"] == 6 and "not accepted here" in err["rule"]
    assert err["gate"]["acked_seq"] == 5 and err["gate"]["chain"] == "broken" and err["gate"]["quarantine_seq"] == 10
    assert await pool.fetchval("SELECT array_agg(gate_seq ORDER BY gate_seq) FROM passages") == [1, 2, 3, 4, 5]
    assert await pool.fetchval("SELECT array_agg(gate_seq ORDER BY gate_seq) FROM link_quarantine") == list(range(6, 11))
    # The reports count what was merged, once.
    assert await pool.fetchval("SELECT sum(trips) FROM transport_daily WHERE enterprise_id = 'e-a'") == 5
    # A resend from the acknowledged head (a site that missed the answer) is kept apart, not doubled and not
    # refused again.
    status, again = await site.send(rows[5:])
    assert status == 200 and again["chain"] == "broken" and again["accepted"] == 0
    assert await pool.fetchval("SELECT count(*) FROM link_quarantine") == 5
    resp = await client.get("/api/v1/sites", headers=admin)
    problems = (await resp.json())["sites"][0]["problems"]
    refused = [p for p in problems if p["code"] == "row_refused"]
    assert len(refused) == 1 and refused[0]["seq"] == 6 and refused[0]["gate_id"] == GATE
    assert "not accepted here" in refused[0]["rule"] and refused[0]["quarantined_upto"] == 10
    url = f"/api/v1/sites/{site.site_id}/gates/{GATE}/resolve"
    # Resolving from the refused row while the rule stands changes nothing and says why.
    resp = await client.post(url, headers=admin, json={"reason": "试图合并被拒行", "from_seq": 6})
    body = await resp.json()
    assert resp.status == 422 and body["error"]["code"] == "row_refused", body
    assert await pool.fetchval("SELECT count(*) FROM passages") == 5
    # From the next row: 7..10 join as a new epoch, the refused row stays apart, on the record.
    resp = await client.post(url, headers=admin, json={"reason": "第6行违反平台规则,单独核查", "from_seq": 7})
    body = await resp.json()
    assert resp.status == 200 and body["merged"] == 4 and body["kept_apart"] == 1, body
    assert await pool.fetchval("SELECT array_agg(gate_seq ORDER BY gate_seq) FROM passages") == [1, 2, 3, 4, 5, 7, 8,
                                                                                                   9, 10]
    assert await pool.fetchval("SELECT outcome FROM link_quarantine WHERE gate_seq = 6") == "kept_apart"
    resp = await client.get("/api/v1/sites", headers=admin)
    site_view = (await resp.json())["sites"][0]
    assert site_view["chain"] == "ok" and not [p for p in site_view["problems"] if p["code"] == "row_refused"]
    assert "row_refused" in site_view["resolved_breaks"][0]["problem"]
    # The site goes on from the new head.
    status, more = await site.send(chain(1, start=11, prev=rows[-1]["hash"]))
    assert status == 200 and more["chain"] == "ok" and more["acked_seq"] == 11
