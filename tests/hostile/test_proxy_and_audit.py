"""Where a change came from: the client address behind trusted proxies only, and the audit log over HTTP."""

from __future__ import annotations

import dataclasses

import pytest

from gate_service.proxy import client_address, parse_networks

NETS = parse_networks("127.0.0.1, 10.0.0.0/8, ::1")
STEEL = {"name": "某钢铁", "industry": "steel", "county": "襄汾县", "zone_id": "xiangfen"}


@pytest.mark.parametrize(
    ("peer", "xff", "real_ip", "expected"),
    [
        ("127.0.0.1", ["203.0.113.7"], None, "203.0.113.7"),
        # The client forges a leftmost entry; our proxy appended the real peer: the rightmost untrusted wins.
        ("127.0.0.1", ["1.2.3.4, 203.0.113.7"], None, "203.0.113.7"),
        ("127.0.0.1", ["1.2.3.4, 203.0.113.7, 10.1.2.3"], None, "203.0.113.7"),
        ("127.0.0.1", ["1.2.3.4", "203.0.113.7"], None, "203.0.113.7"),  # repeated headers
        ("127.0.0.1", ["10.0.0.5, 10.0.0.6"], None, "10.0.0.5"),  # every hop trusted: the leftmost
        ("127.0.0.1", [], "198.51.100.2", "198.51.100.2"),
        ("127.0.0.1", ["garbage, 203.0.113.7"], None, "203.0.113.7"),
        ("127.0.0.1", ["203.0.113.7, garbage"], None, "127.0.0.1"),  # a bad hop stops the walk
        ("127.0.0.1", ["[2001:db8::1]:443"], None, "2001:db8::1"),
        ("127.0.0.1", ["203.0.113.7:5050"], None, "203.0.113.7"),
        ("::1", ["2001:db8::9"], None, "2001:db8::9"),
        ("::ffff:127.0.0.1", ["203.0.113.7"], None, "203.0.113.7"),
        # An untrusted peer's headers are ignored.
        ("198.51.100.9", ["203.0.113.7"], "203.0.113.8", "198.51.100.9"),
    ],
)
def test_client_address(peer, xff, real_ip, expected) -> None:  # type: ignore[no-untyped-def]
    assert client_address(peer, xff, real_ip, NETS) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert client_address("127.0.0.1", ["203.0.113.7"], "1.1.1.1", ()) == "127.0.0.1"


def test_bad_trusted_proxy_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="CLEANGATE_TRUSTED_PROXIES"):
        parse_networks("127.0.0.1, not-an-ip")


async def _remotes(app) -> list[str]:  # type: ignore[no-untyped-def]
    from gate_service import keys

    return [r["remote"] for r in await app[keys.POOL].fetch("SELECT remote FROM audit_log ORDER BY id")]


async def test_forwarded_for_is_ignored_without_trusted_proxies(client, app, admin) -> None:  # type: ignore[no-untyped-def]
    resp = await client.put("/api/v1/enterprises/e-a", json=STEEL, headers={**admin, "X-Forwarded-For": "6.6.6.6"})
    assert resp.status == 201
    assert await _remotes(app) == ["127.0.0.1"]


class TestBehindTrustedProxy:
    @pytest.fixture
    def settings(self, settings):  # type: ignore[no-untyped-def]
        return dataclasses.replace(settings, trusted_proxies=("127.0.0.1", "::1"))

    async def test_audit_records_the_client_behind_the_proxy(self, client, app, admin) -> None:  # type: ignore[no-untyped-def]
        headers = {**admin, "X-Forwarded-For": "6.6.6.6, 203.0.113.7", "X-Forwarded-Proto": "https"}
        assert (await client.put("/api/v1/enterprises/e-a", json=STEEL, headers=headers)).status == 201
        assert await _remotes(app) == ["203.0.113.7"]


async def test_blacklist_changes_reach_audit_log(client, app, admin, token) -> None:  # type: ignore[no-untyped-def]
    police = await token("police")
    resp = await client.post("/api/v1/blacklist", json={"plate": "晋L12345", "reason": "obd_tampering",
                                                        "case_ref": "LF-2024-001"}, headers=police)
    assert resp.status == 201, await resp.text()
    csv = "plate,reason\n晋L54321,over_limit\nbad,nope\n".encode()
    resp = await client.post("/api/v1/blacklist/import", data=csv, headers={**police, "Content-Type": "text/csv"})
    assert resp.status == 200, await resp.text()
    resp = await client.delete("/api/v1/blacklist/晋L12345", json={"reason": "整改完成"}, headers=police)
    assert resp.status == 200, await resp.text()
    # A refused change writes nothing.
    resp = await client.delete("/api/v1/blacklist/晋L00000", json={"reason": "x"}, headers=police)
    assert resp.status == 404

    listing = await (await client.get("/api/v1/audit?action=blacklist.", headers=admin)).json()
    entries = listing["entries"]
    assert [e["action"] for e in entries] == ["blacklist.revoke", "blacklist.import", "blacklist.add"]
    revoke, imported, added = entries
    assert added["target"] == "晋L12345" and added["detail"]["case_ref"] == "LF-2024-001"
    assert added["role"] == "police" and added["actor"] == "test-police" and added["remote"] == "127.0.0.1"
    assert imported["detail"]["added"] == 1 and imported["detail"]["rejected"] == 1
    assert revoke["detail"]["reason"] == "整改完成"


async def test_audit_endpoint_filters_and_pages(client, app, admin, token) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        assert (await client.put(f"/api/v1/enterprises/e-{i}", json=STEEL, headers=admin)).status == 201
    eco = await token("ecology")
    resp = await client.post("/api/v1/alerts", json={"level": "orange", "from": "2024-12-01T00:00:00+08:00"},
                             headers=eco)
    alert_ok = resp.status in (200, 201)

    everything = (await (await client.get("/api/v1/audit", headers=admin)).json())["entries"]
    assert len(everything) == 5 + alert_ok
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)
    assert {e["action"] for e in everything} >= {"enterprise.put"}

    page1 = await (await client.get("/api/v1/audit?action=enterprise.put&limit=3", headers=admin)).json()
    assert len(page1["entries"]) == 3 and page1["next_before"] is not None
    page2 = await (await client.get(f"/api/v1/audit?action=enterprise.put&before={page1['next_before']}",
                                    headers=admin)).json()
    assert len(page2["entries"]) == 2 and page2["next_before"] is None
    assert {e["target"] for e in page1["entries"] + page2["entries"]} == {f"e-{i}" for i in range(5)}

    by_actor = await (await client.get("/api/v1/audit?actor=test-admin", headers=admin)).json()
    assert len(by_actor["entries"]) == 5
    future = await (await client.get("/api/v1/audit?from=2999-01-01", headers=admin)).json()
    assert future["entries"] == []
    past = await (await client.get("/api/v1/audit?to=2000-01-01T00:00:00", headers=admin)).json()
    assert past["entries"] == []
    bad = await client.get("/api/v1/audit?from=yesterday", headers=admin)
    assert bad.status == 422 and (await bad.json())["error"]["field"] == "from"

    for role in ("ecology", "police", "enterprise", "kiosk"):
        kw = {"enterprise_id": "e-0"} if role == "enterprise" else {}
        if role == "kiosk":
            assert (await client.put("/api/v1/gates/g1", json={"name": "东门", "zone_id": "city"},
                                     headers=admin)).status == 201
            kw = {"gate_id": "g1"}
        headers = await token(role, **kw)
        assert (await client.get("/api/v1/audit", headers=headers)).status == 403


async def test_audit_log_stays_append_only(client, app) -> None:  # type: ignore[no-untyped-def]
    import asyncpg

    from gate_service import keys

    pool = app[keys.POOL]
    await pool.execute("INSERT INTO audit_log (actor, role, action, target) VALUES ('x', 'admin', 'a', 't')")
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await pool.execute("UPDATE audit_log SET actor = 'y'")
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await pool.execute("DELETE FROM audit_log")
