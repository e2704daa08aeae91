"""联网 in the console: the bureau's 联网状态 table lists the sites linked to this platform, and a site's kiosk
says it is cut off from its platform and how old its blacklist copy is (browser, real service)."""

from __future__ import annotations

import base64
import dataclasses
import tempfile
from pathlib import Path

import pytest

from gate_service import keys
from gate_service.link.enrol import create_site_token
from gate_service.link.keys import load_or_create
from gate_service.link.wire import statement_bytes


@pytest.fixture
def settings(settings):
    # This service is also a site whose platform does not answer (port 9, discard: refused at once).
    return dataclasses.replace(settings, platform_url="http://127.0.0.1:9", platform_token="cg_not_used",
                               link_max_backoff=1.0)


def test_bureau_lists_sites_and_the_kiosk_shows_the_link_is_down(live, page):
    admin = live.token("admin")
    live.call("PUT", "/api/v1/enterprises/e-a", admin, {"name": "甲钢铁有限公司", "industry": "steel"})
    live.call("PUT", "/api/v1/gates/g-a", admin, {"name": "甲门", "enterprise_id": "e-a", "zone_id": "city"})
    site_id, secret = live.run(create_site_token(live.app[keys.POOL], enterprise_id="e-a", gate_ids=[],
                                                 name="甲钢铁厂区站点"))
    key = load_or_create(Path(tempfile.mkdtemp(prefix="cg-sitekey-")))
    assert live.call("POST", "/api/v1/link/enrol", secret, {"public_key": key.public_b64})[0] == 200
    statement = {"kind": "sync", "site_id": site_id, "heads": {"g-a": [0, "00" * 32]}, "sent_at": None}
    status, _ = live.call("POST", "/api/v1/link/sync", secret, {
        "statement": statement, "signature": base64.b64encode(key.sign(statement_bytes(statement))).decode()})
    assert status == 200
    page.open("/bureau", live.token("ecology"))
    page.wait_text("#sites-table", "甲钢铁厂区站点")
    row = page.text("#sites-table")
    assert "在线" in row and "e-a" in row
    assert "1 个站点" in page.text("#sites-summary")
    page.screenshot("bureau-sites.png")
    # A video request to that site shows with its state (the site never answers here: it stays pending).
    status, req = live.call("POST", "/api/v1/video-requests", live.token("ecology"), {
        "gate_id": "g-a", "from": "2026-11-30T08:00:00+08:00", "to": "2026-11-30T08:05:00+08:00",
        "reason": "核查进厂车辆录像"})
    assert status == 201, req
    page.open("/bureau", live.token("ecology"))
    page.wait_text("#vr-table", "核查进厂车辆录像")
    assert "等待站点上传" in page.text("#vr-table")
    page.open("/kiosk", live.token("kiosk", gate_id="g-a"))
    page.wait_text("#link-state", "与平台断开")
    assert "黑名单" in page.text("#link-state")
    page.screenshot("kiosk-link-down.png")
