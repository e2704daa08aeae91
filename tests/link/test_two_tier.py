"""A site and a platform as two real processes, each with its own PostgreSQL (issue 14's "done when")."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from gate_service.ledger.chain import link
from tests.link.two_tier import TwoTier, passages, post_passages, running, wait_for

E = "e-xf-steel"
CAMPAIGN_DAY = "2024-12-10T10:00:00+08:00"
GATES = ["g-xf-1", "g-xf-2", "g-xf-3", "g-xf-4", "g-xf-5", "g-xf-6"]


@pytest.fixture(scope="module")
def tiers():
    # Small batches, so that a platform killed while the site catches up is killed between and inside batches.
    with running(E, GATES, backoff=2, batch_size=40) as t:
        yield t


async def _same_at_both(t: TwoTier, gate: str, n: int) -> bool:
    here = await passages(t.site.url, t.s_admin, gate)
    there = await passages(t.platform.url, t.p_admin, gate)
    return len(there) == n and {p["hash"] for p in there} == {p["hash"] for p in here}


async def _sites(t: TwoTier) -> list[dict]:
    async with aiohttp.ClientSession(headers=t.p_admin) as s:
        async with s.get(f"{t.platform.url}/api/v1/sites") as r:
            assert r.status == 200, await r.text()
            return (await r.json())["sites"]


async def _platform_rows(t: TwoTier, gate: str) -> tuple[int, int]:
    """(rows, distinct seqs) of a gate in the platform's own database."""
    r = await t.platform.sql("SELECT count(*) AS n, count(DISTINCT gate_seq) AS d FROM passages WHERE gate_id = $1",
                             gate)
    return r[0]["n"], r[0]["d"]


async def test_passages_reach_the_platform_with_identical_hashes(tiers):
    await post_passages(tiers.site.url, tiers.s_admin, GATES[0], [f"a-{i}" for i in range(5)])
    assert await wait_for(lambda: _same_at_both(tiers, GATES[0], 5), 60)
    there = await passages(tiers.platform.url, tiers.p_admin, GATES[0])
    here = {p["id"]: p for p in await passages(tiers.site.url, tiers.s_admin, GATES[0])}
    for p in there:
        assert p["origin_site"] is not None and p["uploaded_at"] is not None
        mine = here[p["id"]]
        assert (p["gate_seq"], p["hash"], p["plate"], p["decision"]) == (
            mine["gate_seq"], mine["hash"], mine["plate"], mine["decision"])
    site = (await _sites(tiers))[0]
    assert site["enterprise_id"] == E and site["online"] is True and site["chain"] == "ok"
    assert site["uploaded"] >= 5 and site["upload_rate"] == 1.0
    # The platform's own verifier agrees with the uploaded chain.
    out = await asyncio.to_thread(tiers.platform.cli, "ledger", "verify")
    assert "intact" in out or "ok" in out.lower(), out


async def test_platform_down_then_back_all_20_arrive_once(tiers):
    gate = GATES[1]
    await asyncio.to_thread(tiers.platform.stop)
    await post_passages(tiers.site.url, tiers.s_admin, gate, [f"b-{i}" for i in range(20)])

    async def backlog():
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{tiers.site.url}/healthz") as r:
                link = (await r.json())["platform"]
        return link if not link["connected"] and link["pending"] == 20 else None

    # The site says what it holds back and since when (the kiosk shows 与平台断开 …).
    link = await wait_for(backlog, 30)
    assert link and link["disconnected_since"] and link["last_error"]
    await asyncio.to_thread(tiers.platform.start)
    assert await wait_for(lambda: _same_at_both(tiers, gate, 20), 90)
    assert await _platform_rows(tiers, gate) == (20, 20)


async def test_platform_killed_during_upload_loses_and_doubles_nothing(tiers):
    gate = GATES[2]
    total = 300
    await asyncio.to_thread(tiers.platform.stop)
    await post_passages(tiers.site.url, tiers.s_admin, gate, [f"c-{i}" for i in range(total)])
    await asyncio.to_thread(tiers.platform.start)
    # Kill -9 as soon as the first batches are in (40 rows each): the rest is on the wire or not yet sent.
    seen = await wait_for(lambda: _rows_between(tiers, gate, 1, total - 1), 30, step=0.02)
    tiers.platform.kill9()
    assert seen, "the upload was not caught in progress"
    await asyncio.to_thread(tiers.platform.start)
    assert await wait_for(lambda: _same_at_both(tiers, gate, total), 120)
    assert await _platform_rows(tiers, gate) == (total, total)


async def test_site_restarted_while_the_platform_is_down_resumes_exactly_once(tiers):
    gate = GATES[5]
    await post_passages(tiers.site.url, tiers.s_admin, gate, [f"f-{i}" for i in range(3)])
    assert await wait_for(lambda: _same_at_both(tiers, gate, 3), 60)
    await asyncio.to_thread(tiers.platform.stop)
    await post_passages(tiers.site.url, tiers.s_admin, gate, [f"f-{i}" for i in range(3, 12)])
    await asyncio.to_thread(tiers.site.stop)
    await asyncio.to_thread(tiers.site.start)  # same data dir: same ledger, same key
    await asyncio.to_thread(tiers.platform.start)
    assert await wait_for(lambda: _same_at_both(tiers, gate, 12), 90)
    assert await _platform_rows(tiers, gate) == (12, 12)
    assert (await _gate_state(tiers, gate))["chain"] == "ok"


async def _rows_between(t: TwoTier, gate: str, low: int, high: int) -> int | None:
    n, _ = await _platform_rows(t, gate)
    return n if low <= n <= high else None


async def _rewrite(t: TwoTier, gate: str, keep: int, rewrite_seq: int | None) -> None:
    """What a site's owner with superuser SQL could do: cut the tail after ``keep`` and re-hash a row."""
    import asyncpg

    from gate_service.db.connect import _init_connection
    from gate_service.db.embedded import embedded_server
    from gate_service.ledger.chain import HASHED_FIELDS

    conn = await asyncpg.connect(embedded_server(t.site.data_dir, cleanup_mode=None).get_uri())
    try:
        await _init_connection(conn)
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")  # the append-only trigger is off
            await conn.execute("DELETE FROM passages WHERE gate_id = $1 AND gate_seq > $2", gate, keep)
            head = await conn.fetchrow("SELECT * FROM passages WHERE gate_id = $1 AND gate_seq = $2", gate, keep)
            digest = bytes(head["hash"])
            if rewrite_seq is not None:
                row = dict(await conn.fetchrow("SELECT * FROM passages WHERE gate_id = $1 AND gate_seq = $2", gate,
                                               rewrite_seq))
                row["plate"] = "晋LZ9999"
                digest = link(bytes(row["prev_hash"]), row)
                await conn.execute("UPDATE passages SET plate = $3, hash = $4 WHERE gate_id = $1 AND gate_seq = $2",
                                   gate, rewrite_seq, row["plate"], digest)
                assert rewrite_seq == keep and set(HASHED_FIELDS) >= {"plate"}
            await conn.execute("UPDATE gate_chain_heads SET seq = $2, hash = $3 WHERE gate_id = $1", gate, keep, digest)
    finally:
        await conn.close()


async def _gate_state(t: TwoTier, gate: str) -> dict | None:
    for site in await _sites(t):
        for g in site["gates"]:
            if g["gate_id"] == gate:
                return {**g, "site_chain": site["chain"], "problems": site["problems"]}
    return None


async def test_tail_cut_and_rehash_at_the_site_is_flagged_broken_with_the_first_bad_seq(tiers):
    cut, cut_only = GATES[3], GATES[4]
    for gate, prefix in ((cut, "d"), (cut_only, "e")):
        await post_passages(tiers.site.url, tiers.s_admin, gate, [f"{prefix}-{i}" for i in range(10)])
        assert await wait_for(lambda gate=gate: _same_at_both(tiers, gate, 10), 60)
    await _rewrite(tiers, cut, keep=6, rewrite_seq=6)  # rows 7-10 gone, row 6 rewritten and re-hashed
    await _rewrite(tiers, cut_only, keep=7, rewrite_seq=None)  # rows 8-10 gone
    # The site goes on recording: its new rows 7, 8 must not be merged over what the platform holds.
    await post_passages(tiers.site.url, tiers.s_admin, cut, ["d-new-1", "d-new-2"], plate="晋LB{n:04d}")

    async def broken(gate):
        state = await _gate_state(tiers, gate)
        return state if state and state["chain"] == "broken" else None

    state = await wait_for(lambda: broken(cut), 60)
    assert state and state["first_bad_seq"] == 6 and state["site_chain"] == "broken"
    state = await wait_for(lambda: broken(cut_only), 60)
    assert state and state["first_bad_seq"] == 8, state
    # What the platform holds is unchanged, and the site's new history sits apart.
    assert await _platform_rows(tiers, cut) == (10, 10)
    rows = await tiers.platform.sql("SELECT gate_seq FROM link_quarantine WHERE gate_id = $1 ORDER BY gate_seq", cut)
    assert await wait_for(lambda: _quarantined(tiers, cut, [6, 7, 8]), 20), [r["gate_seq"] for r in rows]
    assert any(p["code"] == "chain_broken" and p["gate_id"] == cut for p in state["problems"])


async def _quarantined(t: TwoTier, gate: str, seqs: list[int]) -> bool:
    rows = await t.platform.sql("SELECT DISTINCT gate_seq FROM link_quarantine WHERE gate_id = $1 ORDER BY 1", gate)
    return [r["gate_seq"] for r in rows] == seqs


async def test_blacklist_entry_added_at_the_platform_denies_at_the_site_within_5_s(tiers):
    plate = "晋L12345D"
    police = {"Authorization": "Bearer " + await asyncio.to_thread(tiers.platform.cli, "token", "create", "--role",
                                                                   "police")}
    async with aiohttp.ClientSession() as s:
        # Registered at the platform only: the registry change comes down to the site.
        async with s.put(f"{tiers.platform.url}/api/v1/vehicles/{plate}", headers=tiers.p_admin, json={
                "plate_color": "yellow-green", "fuel_type": "electric", "vehicle_class": "heavy_truck"}) as r:
            assert r.status in (200, 201), await r.text()

        async def known_at_site():
            async with s.get(f"{tiers.site.url}/api/v1/vehicles/{plate}", headers=tiers.s_admin) as r:
                return r.status == 200

        assert await wait_for(known_at_site, 5, step=0.05)

        async def pass_at_site(ref, at=CAMPAIGN_DAY):
            # Judged under the 2024-25 campaign plan (三(六)29 is a campaign rule; today no plan is in force).
            body = {"plate": plate, "direction": "in", "client_ref": ref, **({"at": at} if at else {})}
            async with s.post(f"{tiers.site.url}/api/v1/gates/{GATES[0]}/passages", headers=tiers.s_admin,
                              json=body) as r:
                assert r.status == 201, await r.text()
                return await r.json()

        before = await pass_at_site("bl-0")
        assert before["decision"] == "allow" and before["blacklisted"] is False, before
        async with s.post(f"{tiers.platform.url}/api/v1/blacklist", headers=police,
                          json={"plate": plate, "reason": "obd_tampering", "note": "路检发现OBD被篡改"}) as r:
            assert r.status == 201, await r.text()
        started = time.monotonic()

        async def listed_at_site():
            async with s.get(f"{tiers.site.url}/api/v1/blacklist/{plate}", headers=tiers.s_admin) as r:
                return r.status == 200

        assert await wait_for(listed_at_site, 5, step=0.05)
        took = time.monotonic() - started
        # A passage is judged by the list as it was at its moment (issue 15 item 14): for the campaign-day
        # passage to meet it, the listing is dated back to before the campaign at the site.
        await tiers.site.sql("UPDATE blacklist_entries SET added_at = '2024-10-01T00:00:00+08:00' WHERE plate = $1",
                             plate)
        answer = await pass_at_site("bl-1")
        assert answer["decision"] == "deny" and answer["blacklisted"] is True, answer
        assert any(r.get("clause") == "三(六)29" for r in answer["reasons"]), answer["reasons"]
        assert took < 5
        async with s.get(f"{tiers.site.url}/healthz") as r:
            health = await r.json()
        assert health["platform"]["connected"] is True and health["platform"]["blacklist_updated_at"]
        # The kiosk's status line reads the same.
        async with s.get(f"{tiers.site.url}/api/v1/console/status", headers=tiers.s_admin) as r:
            assert (await r.json())["link"]["blacklist_updated_at"]
        # Lifted at the platform: lifted at the site.
        async with s.delete(f"{tiers.platform.url}/api/v1/blacklist/{plate}", headers=police,
                            json={"reason": "复检合格"}) as r:
            assert r.status == 200, await r.text()

        async def lifted_at_site():
            async with s.get(f"{tiers.site.url}/api/v1/blacklist/{plate}", headers=tiers.s_admin) as r:
                return r.status == 404

        assert await wait_for(lifted_at_site, 5, step=0.05)
        # Lifted today: a passage now meets no listing (one dated in the campaign still met it then, item 14).
        lifted = await pass_at_site("bl-2", at=None)
        assert lifted["decision"] == "allow" and lifted["blacklisted"] is False, lifted
