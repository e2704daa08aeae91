"""向站点调取录像 in the browser, across two real `gate-service serve` processes (a site and the platform, each with
its own PostgreSQL and media store): the bureau opens a passage whose video is still at the site, presses
"向站点调取录像", and the request shows in the 联网 panel's video-request table with its state in Chinese, until
the site has uploaded it and the passage's clip plays at the platform."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.console.conftest import Page
from tests.link.test_two_tier_media import _segment
from tests.link.two_tier import TwoTier, passages, running, wait_for

E = "e-xf-steel"
GATE = "g-vr-1"
T0 = (datetime.now(timezone.utc) - timedelta(hours=2)).replace(microsecond=0)
PLATE = "晋LV0042"


@pytest.fixture(scope="module")
def tiers() -> Iterator[TwoTier]:
    with running(E, [GATE], backoff=2) as t:
        yield t


async def _passage_at_the_site(t: TwoTier) -> str:
    """A segment of the site's video and a passage inside it, uploaded (as a ledger row) to the platform."""
    import aiohttp

    await _segment(t, GATE, T0)
    async with aiohttp.ClientSession(headers=t.s_admin) as s:
        async with s.post(f"{t.site.url}/api/v1/gates/{GATE}/passages", json={
                "plate": PLATE, "direction": "in", "client_ref": "vr-1",
                "at": (T0 + timedelta(seconds=5)).isoformat()}) as r:
            assert r.status == 201, await r.text()
            passage_id = (await r.json())["passage_id"]

    async def uploaded() -> bool:
        return any(p["id"] == passage_id for p in await passages(t.platform.url, t.p_admin, GATE))

    assert await wait_for(uploaded, 60), "the site's passage did not reach the platform within 60 s"
    return passage_id


def test_bureau_requests_a_passages_video_from_the_site(tiers: TwoTier, browser: Any) -> None:
    asyncio.run(_passage_at_the_site(tiers))
    page = Page(browser, tiers.platform.url)
    try:
        page.open("/bureau", tiers.platform.cli("token", "create", "--role", "ecology"))
        page.wait_text("#who", "生态环境局")
        page.type("#l-plate", PLATE)
        page.click("#ledger-btn")
        page.wait_text("#ledger-count", "1 条")
        page.wait_text("#ledger-table", PLATE)
        page.click("#ledger-table tbody tr:first-child")
        # The clip is at the site: said so, with the button that asks for it (the platform never calls the site).
        button = page.wait(lambda: [b for b in page.qa("#detail button") if "向站点调取录像" in b.text],
                           what="the 向站点调取录像 button")[0]
        assert "video_at_site" in page.text("#detail")
        assert page.text("#vr-table").count(PLATE) == 0 and "核查通行记录" not in page.text("#vr-table")
        button.click()
        page.wait_text("#detail", "已向站点调取")
        # The request in the panel: its gate, the bureau's reason and a state in Chinese.
        page.wait_text("#vr-table", "生态环境局核查通行记录")
        row = page.q("#vr-table tbody tr").text
        assert GATE in row, row
        assert any(zh in row for zh in ("等待站点上传", "上传中", "已完成")), row
        # The real site takes it up by long-poll and uploads the segment; the table (refreshed every 10 s) says so.
        page.wait(lambda: "已完成" in page.q("#vr-table tbody tr").text, timeout=60, what="the request 已完成")
        assert "查看片段" in page.q("#vr-table tbody tr").text
        # Opened again, the passage's clip now plays from the platform's copy.
        page.click("#ledger-table tbody tr:first-child")
        page.wait(lambda: page.q("#detail-clip"), what="the passage's clip at the platform")
        assert "video_at_site" not in page.text("#detail")
        page.screenshot("bureau-video-request.png")
    finally:
        browser.get("about:blank")  # its open requests would otherwise hold up the platform's shutdown
