"""Resolving a broken chain at the platform, against the real app and PostgreSQL: signed batches as a site sends
them, the break flagged, both histories shown, the site's new history accepted as a new epoch, and the
platform's own verifier checking both epochs afterwards."""

from __future__ import annotations

from gate_service import keys as app_keys
from gate_service.ledger.chain import link
from gate_service.ledger.store import verify
from tests.link.test_batches import GATE, _site, chain


def rehash(rows: list[dict], prev: bytes) -> list[dict]:
    out = []
    for r in rows:
        r = dict(r)
        r["prev_hash"], r["hash"] = prev, link(prev, r)
        prev = r["hash"]
        out.append(r)
    return out


async def _verify(app) -> list:
    async with app[app_keys.POOL].acquire() as conn:
        _, breaks = await verify(conn, GATE)
    return breaks


async def test_rewritten_history_resolved_as_a_new_epoch_keeps_both_and_verifies(client, app, admin, token, tmp_path):
    site = await _site(client, app, admin, tmp_path)
    rows = chain(10)
    assert (await site.send(rows))[1]["acked_seq"] == 10
    # At the site: row 6 rewritten (another plate) and rows 6-10 re-hashed, then two real new passages.
    forged = [dict(r) for r in rows[5:]]
    forged[0]["plate"] = "晋LZ9999"
    forged = rehash(forged, rows[4]["hash"])
    new = chain(2, start=11, prev=forged[-1]["hash"], plate="晋LN{seq:04d}")
    status, answer = await site.send(forged + new)
    assert status == 200 and answer["chain"] == "broken" and answer["first_bad_seq"] == 6 and answer["quarantined"] == 7

    ecology = await token("ecology")
    resp = await client.get(f"/api/v1/sites/{site.site_id}/gates/{GATE}/chain", headers=ecology)
    view = await resp.json()
    assert resp.status == 200 and view["chain"] == "broken" and view["from_seq"] == 6, view
    six = view["rows"][0]
    assert six["seq"] == 6 and six["differs"] is True
    assert six["platform"][0]["plate"] == rows[5]["plate"] and six["site"][0]["plate"] == "晋LZ9999"
    assert [r["seq"] for r in view["rows"]] == list(range(6, 13))
    assert view["signed_heads"] and view["resolutions"] == []

    resp = await client.post(f"/api/v1/sites/{site.site_id}/gates/{GATE}/resolve", headers=ecology,
                             json={"reason": "核实后接受站点新历史"})
    assert resp.status == 403  # an admin's decision
    resp = await client.post(f"/api/v1/sites/{site.site_id}/gates/{GATE}/resolve", headers=admin,
                             json={"reason": "短", "from_seq": 6})
    assert resp.status == 422  # a reason an auditor can read
    resp = await client.post(f"/api/v1/sites/{site.site_id}/gates/{GATE}/resolve", headers=admin,
                             json={"reason": "现场核查:第6条被改写,原始记录以平台为准;之后的新记录接受", "from_seq": 6})
    err = await resp.json()
    assert resp.status == 409 and err["error"]["code"] == "row_already_held" and err["error"]["seq"] == 6
    resp = await client.post(f"/api/v1/sites/{site.site_id}/gates/{GATE}/resolve", headers=admin,
                             json={"reason": "现场核查:第6条被改写,原始记录以平台为准;之后的新记录接受"})
    res = await resp.json()
    assert resp.status == 200, res
    # The rewritten copies of held rows stay apart; only the passages the platform never had are merged.
    assert (res["epoch"], res["first_bad_seq"], res["accepted_from_seq"], res["merged"], res["kept_apart"]) == \
        (1, 6, 11, 2, 5)
    pool = app[app_keys.POOL]
    held = await pool.fetch("SELECT gate_seq, chain_epoch, plate FROM passages WHERE gate_id = $1 ORDER BY 2, 1", GATE)
    assert [(r["gate_seq"], r["chain_epoch"]) for r in held] == [(s, 0) for s in range(1, 11)] + [(11, 1), (12, 1)]
    assert held[5]["plate"] == rows[5]["plate"]  # the original, as first reported
    outcomes = await pool.fetch("SELECT gate_seq, outcome FROM link_quarantine WHERE gate_id = $1 ORDER BY 1", GATE)
    assert [o["outcome"] for o in outcomes] == ["kept_apart"] * 5 + ["merged"] * 2
    assert await _verify(app) == []

    # The site goes on from its own head; the platform accepts it into the new epoch.
    status, more = await site.send(chain(1, start=13, prev=new[-1]["hash"]))
    assert status == 200 and more["chain"] == "ok" and more["accepted"] == 1 and more["acked_seq"] == 13
    assert await _verify(app) == []

    # The break stays on the record.
    resp = await client.get("/api/v1/sites", headers=ecology)
    mine = next(s for s in (await resp.json())["sites"] if s["site_id"] == site.site_id)
    assert mine["chain"] == "ok" and mine["resolved_breaks"][0]["first_bad_seq"] == 6
    assert mine["resolved_breaks"][0]["reason"].startswith("现场核查") and mine["gates"][0]["epoch"] == 1
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'site.chain_resolve'") == 1
    resp = await client.post(f"/api/v1/sites/{site.site_id}/gates/{GATE}/resolve", headers=admin,
                             json={"reason": "再次处理一次看看"})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "chain_not_broken"


async def test_cut_tail_resolved_keeps_the_cut_rows_and_verify_still_guards_them(client, app, admin, tmp_path):
    site = await _site(client, app, admin, tmp_path)
    rows = chain(10)
    await site.send(rows)
    # Rows 8-10 cut at the site; it records two new passages as 8 and 9.
    new = chain(2, start=8, prev=rows[6]["hash"], plate="晋LC{seq:04d}")
    status, answer = await site.send(new)
    assert answer["chain"] == "broken" and answer["first_bad_seq"] == 8
    resp = await client.post(f"/api/v1/sites/{site.site_id}/gates/{GATE}/resolve", headers=admin,
                             json={"reason": "企业承认删除了第8至10条;原记录保留为证据"})
    res = await resp.json()
    assert resp.status == 200 and (res["accepted_from_seq"], res["merged"], res["kept_apart"]) == (8, 2, 0), res
    pool = app[app_keys.POOL]
    # Twelve passages happened: the ten first reported (three of them cut at the site) and the two new ones.
    assert await pool.fetchval("SELECT count(*) FROM passages WHERE gate_id = $1", GATE) == 12
    assert await _verify(app) == []
    # The old epoch is still guarded: losing one of its rows at the platform is a break.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("DELETE FROM passages WHERE gate_id = $1 AND gate_seq = 10 AND chain_epoch = 0", GATE)
    breaks = await _verify(app)
    assert breaks and "epoch 0" in breaks[0].problem, breaks


async def test_an_override_in_both_epochs_at_the_same_seq_counts_once(client, app, admin, tmp_path):
    """After a cut tail is resolved, seq 8 exists in epoch 0 (as first reported) and in epoch 1 (the site's new
    history). Both are overrides of the same refused passage: only the first, epoch 0's, is the trip."""
    site = await _site(client, app, admin, tmp_path)
    rows = chain(10)
    rows[2].update(decision="deny", clean=False)  # seq 3 refused ...
    rows[7].update(overrides=rows[2]["id"], override_reason="现场核实后放行")  # ... and let through as seq 8
    # The site cut 8-10 and recorded two new passages as 8 and 9; its new 8 overrides the same refused row.
    new = chain(2, start=8, prev=rows[6]["hash"], plate="晋LC{seq:04d}")
    new[0].update(overrides=rows[2]["id"], override_reason="再次放行")
    # Recorded just now: resolved within seconds, the new 8 is still taken (once 500 already_overridden).
    rows = rehash(rows, rows[0]["prev_hash"])
    new = rehash(new, rows[6]["hash"])
    await site.send(rows)
    status, answer = await site.send(new)
    assert answer["chain"] == "broken" and answer["first_bad_seq"] == 8
    resp = await client.post(f"/api/v1/sites/{site.site_id}/gates/{GATE}/resolve", headers=admin,
                             json={"reason": "企业承认删除了第8至10条;原记录保留为证据"})
    assert resp.status == 200, await resp.json()
    pool = app[app_keys.POOL]
    both = await pool.fetch("SELECT chain_epoch FROM passages WHERE gate_id = $1 AND gate_seq = 8 ORDER BY 1", GATE)
    assert [r["chain_epoch"] for r in both] == [0, 1]
    # Trips: 1, 2, 4-7, 9, 10 and the first override (epoch 0's 8) of the ten first reported, and the new 9.
    counted = await pool.fetchval(
        """SELECT count(*) FROM passages WHERE gate_id = $1 AND decision = 'allow'
           AND (overrides IS NULL OR passage_counts(decision, overrides, gate_id, gate_seq, chain_epoch))""", GATE)
    assert counted == 10
    rollup = await pool.fetchval("SELECT sum(trips) FROM transport_daily WHERE enterprise_id = 'e-a'")
    raw = await pool.fetchval("SELECT sum(trips) FROM transport_daily_raw(current_date - 2, current_date + 2) "
                              "WHERE enterprise_id = 'e-a'")
    monthly = await pool.fetchval("SELECT sum(trips) FROM transport_monthly WHERE enterprise_id = 'e-a'")
    assert (rollup, raw, monthly) == (10, 10, 10)


async def test_a_live_override_in_the_new_epoch_of_a_passage_the_old_epoch_overrode_is_accepted(client, app, admin,
                                                                                                  tmp_path):
    """The cut rows held an override of seq 3; the site, no longer having it, lets the truck through again after
    the break is resolved, live. The platform takes the row (the link must not stall on it) and counts one trip."""
    site = await _site(client, app, admin, tmp_path)
    rows = chain(10)
    rows[2].update(decision="deny", clean=False)
    rows[8].update(overrides=rows[2]["id"], override_reason="现场核实后放行")  # seq 9: cut below
    rows = rehash(rows, rows[0]["prev_hash"])
    await site.send(rows)
    new = chain(1, start=8, prev=rows[6]["hash"], plate="晋LC{seq:04d}")
    await site.send(new)
    resp = await client.post(f"/api/v1/sites/{site.site_id}/gates/{GATE}/resolve", headers=admin,
                             json={"reason": "企业承认删除了第8至10条;原记录保留为证据"})
    assert resp.status == 200, await resp.json()
    live = chain(1, start=9, prev=new[-1]["hash"], plate="晋LA0003")
    live[0].update(overrides=rows[2]["id"], override_reason="再次放行")
    live = rehash(live, new[-1]["hash"])
    status, answer = await site.send(live)
    assert status == 200 and answer["chain"] == "ok" and answer["acked_seq"] == 9, answer
    pool = app[app_keys.POOL]
    overrides = await pool.fetch(
        """SELECT p.chain_epoch, o.late_replay FROM passage_overrides o JOIN passages p ON p.id = o.override_id
           WHERE o.cited_id = $1 ORDER BY 1""", rows[2]["id"])
    assert [(o["chain_epoch"], o["late_replay"]) for o in overrides] == [(0, False), (1, True)]
    # 1, 2, 4-8 and 10 first reported, the old epoch's override (9), the new 8: ten; the new override is not a trip.
    assert await pool.fetchval("SELECT sum(trips) FROM transport_daily WHERE enterprise_id = 'e-a'") == 10
