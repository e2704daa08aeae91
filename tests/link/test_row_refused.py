"""A row the platform's database refuses (a rule the site's database does not have) gets a definite answer.

Before: the platform answered 500 and the site resent the same batch for ever; the gate's whole uplink stalled
behind one poison row and nobody was told. Now: 422 ``row_refused`` naming the seq and the rule; the refused row
and every later row of the gate are kept apart in the platform's quarantine (nothing merged past the hole in the
chain, nothing lost), ``GET /api/v1/sites`` lists the problem, and the site records it and does not resend.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.link.two_tier import TwoTier, post_passages, running, wait_for

E = "e-xf-refuse"
GATE = "g-rf-1"
POISON = "晋LB1000"


@pytest.fixture(scope="module")
def tiers():
    with running(E, [GATE], backoff=2, batch_size=40) as t:
        yield t


async def _site_health(t: TwoTier) -> dict:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{t.site.url}/healthz") as r:
            return (await r.json())["platform"]


async def _sites(t: TwoTier) -> list[dict]:
    async with aiohttp.ClientSession(headers=t.p_admin) as s:
        async with s.get(f"{t.platform.url}/api/v1/sites") as r:
            assert r.status == 200, await r.text()
            return (await r.json())["sites"]


async def test_a_row_the_platform_refuses_is_answered_kept_apart_and_not_resent(tiers):
    t = tiers
    await post_passages(t.site.url, t.s_admin, GATE, [f"ok-{i}" for i in range(3)], plate="晋LA{n:04d}")

    async def acked(n: int):
        r = await t.platform.sql("SELECT count(*) AS n FROM passages WHERE gate_id = $1", GATE)
        return r[0]["n"] == n

    assert await wait_for(lambda: acked(3), 60)
    # A rule only the platform has (a province's stricter data rule, say): this one plate is refused there.
    await t.platform.sql(f"ALTER TABLE passages ADD CONSTRAINT test_no_poison CHECK (plate <> '{POISON}')")
    await post_passages(t.site.url, t.s_admin, GATE, ["poison"], plate="晋LB{n:04d}")  # 晋LB1000, seq 4
    await post_passages(t.site.url, t.s_admin, GATE, [f"after-{i}" for i in range(2)], plate="晋LC{n:04d}")

    async def problem():
        site = (await _sites(t))[0]
        return next((p for p in site["problems"] if p["code"] == "row_refused"), None)

    found = await wait_for(problem, 30)
    assert found, (await _sites(t))[0]["problems"]
    assert found["gate_id"] == GATE and found["seq"] == 4 and "test_no_poison" in found["rule"]
    site = (await _sites(t))[0]
    assert site["chain"] == "broken"
    # Nothing merged past the refused row; the refused row and the later ones are kept apart, none lost.
    merged = await t.platform.sql("SELECT gate_seq FROM passages WHERE gate_id = $1 ORDER BY gate_seq", GATE)
    assert [r["gate_seq"] for r in merged] == [1, 2, 3]

    async def quarantined():
        rows = await t.platform.sql(
            "SELECT gate_seq, row_data->>'plate' AS plate FROM link_quarantine WHERE gate_id = $1 ORDER BY gate_seq",
            GATE)
        return rows if [r["gate_seq"] for r in rows] == [4, 5, 6] else None

    rows = await wait_for(quarantined, 30)
    assert rows and rows[0]["plate"] == POISON, rows
    # The site knows: its link status names the refusal, and it is still connected (not a link outage).
    async def site_knows():
        h = await _site_health(t)
        g = h["gates"].get(GATE, {})
        return h if (g.get("refused_row") or {}).get("seq") == 4 else None

    health = await wait_for(site_knows, 20)
    assert health, (await _site_health(t))["gates"]
    assert health["gates"][GATE]["refused_row"]["code"] == "row_refused"
    assert health["pending"] == 0
    # No resending: the platform saw no further batch of this gate for several heartbeats.
    before = await t.platform.sql("SELECT count(*) AS n FROM link_signed_heads WHERE gate_id = $1", GATE)
    await asyncio.sleep(8)
    after = await t.platform.sql("SELECT count(*) AS n FROM link_signed_heads WHERE gate_id = $1", GATE)
    assert after[0]["n"] == before[0]["n"]
    log = (t.platform.data_dir / "service.log").read_text(errors="replace")
    assert "Traceback" not in log and " 500 " not in log, log[-3000:]
    # A later passage still reaches the platform, kept apart with the rest until the bureau resolves the gate.
    await post_passages(t.site.url, t.s_admin, GATE, ["late"], plate="晋LD{n:04d}")

    async def seventh():
        rows = await t.platform.sql("SELECT 1 FROM link_quarantine WHERE gate_id = $1 AND gate_seq = 7", GATE)
        return bool(rows)

    assert await wait_for(seventh, 30)
    # A restarted site (which no longer has the 422 it got) still shows the refusal, from the platform's answer.
    await asyncio.to_thread(t.site.stop)
    await asyncio.to_thread(t.site.start)
    health = await wait_for(site_knows, 30)
    assert health and "test_no_poison" in health["gates"][GATE]["refused_row"]["rule"], await _site_health(t)
