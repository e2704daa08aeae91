"""Site tokens, key pinning and what a site may do (in-process app, real PostgreSQL)."""

from __future__ import annotations

import base64
import os
import stat

from gate_service import keys as app_keys
from gate_service.link import enrol
from gate_service.link.keys import load_or_create, verify
from gate_service.link.wire import statement_bytes


def test_key_pair_is_made_once_with_mode_0600(tmp_path):
    first = load_or_create(tmp_path)
    path = tmp_path / "link" / "site-ed25519.pem"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = load_or_create(tmp_path)
    assert again.public_raw == first.public_raw
    msg = statement_bytes({"gate_id": "g", "seq": 3})
    assert verify(first.public_raw, first.sign(msg), msg)
    assert not verify(first.public_raw, first.sign(msg), msg + b"x")


async def _setup(client, admin):
    await client.put("/api/v1/enterprises/e-a", headers=admin, json={"name": "甲企业", "industry": "steel"})
    await client.put("/api/v1/enterprises/e-b", headers=admin, json={"name": "乙企业", "industry": "coking"})
    await client.put("/api/v1/gates/g-a", headers=admin, json={"name": "甲门", "enterprise_id": "e-a", "zone_id": "city"})
    await client.put("/api/v1/gates/g-b", headers=admin, json={"name": "乙门", "enterprise_id": "e-b", "zone_id": "city"})
    await client.put("/api/v1/gates/cp-1", headers=admin, json={"name": "检查站", "zone_id": "city"})


async def test_site_pins_its_key_and_a_second_key_is_refused_until_reenrolled(client, app, admin, tmp_path):
    await _setup(client, admin)
    site_id, secret = await enrol.create_site_token(app[app_keys.POOL], enterprise_id="e-a", gate_ids=[])
    site = {"Authorization": f"Bearer {secret}"}
    k1, k2 = load_or_create(tmp_path / "one"), load_or_create(tmp_path / "two")
    r = await client.post("/api/v1/link/enrol", headers=site, json={"public_key": k1.public_b64})
    assert r.status == 200 and (await r.json())["site_id"] == site_id
    r = await client.post("/api/v1/link/enrol", headers=site, json={"public_key": k1.public_b64})
    assert r.status == 200
    r = await client.post("/api/v1/link/enrol", headers=site, json={"public_key": k2.public_b64})
    assert r.status == 409 and (await r.json())["error"]["code"] == "site_key_mismatch"
    # A statement signed by the other key does not pass either.
    statement = {"kind": "sync", "site_id": site_id, "heads": {}}
    r = await client.post("/api/v1/link/sync", headers=site, json={
        "statement": statement, "signature": base64.b64encode(k2.sign(statement_bytes(statement))).decode()})
    assert r.status == 401 and (await r.json())["error"]["code"] == "bad_signature"
    r = await client.post(f"/api/v1/sites/{site_id}/reenrol", headers=admin, json={})
    assert r.status == 200
    r = await client.post("/api/v1/link/enrol", headers=site, json={"public_key": k2.public_b64})
    assert r.status == 200
    audit = await app[app_keys.POOL].fetchval("SELECT count(*) FROM audit_log WHERE action = 'site.reenrol'")
    assert audit == 1


async def test_site_uploads_only_for_its_own_gates_and_reads_nothing_else(client, app, admin, tmp_path):
    await _setup(client, admin)
    pool = app[app_keys.POOL]
    site_id, secret = await enrol.create_site_token(pool, enterprise_id="e-a", gate_ids=[])
    cp_id, cp_secret = await enrol.create_site_token(pool, enterprise_id=None, gate_ids=["cp-1"])
    site = {"Authorization": f"Bearer {secret}"}
    key = load_or_create(tmp_path)
    await client.post("/api/v1/link/enrol", headers=site, json={"public_key": key.public_b64})
    statement = {"kind": "sync", "site_id": site_id, "heads": {"g-a": [0, "00" * 32], "g-b": [0, "00" * 32]}}
    r = await client.post("/api/v1/link/sync", headers=site, json={
        "statement": statement, "signature": base64.b64encode(key.sign(statement_bytes(statement))).decode()})
    gates = (await r.json())["gates"]
    assert gates["g-a"]["chain"] == "ok" and gates["g-b"]["refused"] == "forbidden_gate"
    for path in ("/api/v1/passages", "/api/v1/vehicles", "/api/v1/sites", "/api/v1/audit"):
        r = await client.get(path, headers=site)
        assert r.status == 403, path
    r = await client.get("/api/v1/link/downlink?wait=0", headers={"Authorization": f"Bearer {cp_secret}"})
    assert r.status == 200 and "blacklist" in (await r.json())["streams"]
    assert await pool.fetchval("SELECT gate_id FROM link_site_gates WHERE site_id = $1", cp_id) == "cp-1"


async def test_enterprise_sees_only_its_own_sites(client, app, admin, token):
    await _setup(client, admin)
    pool = app[app_keys.POOL]
    await enrol.create_site_token(pool, enterprise_id="e-a", gate_ids=[])
    await enrol.create_site_token(pool, enterprise_id="e-b", gate_ids=[])
    ent = await token("enterprise", enterprise_id="e-a")
    r = await client.get("/api/v1/sites", headers=ent)
    assert [s["enterprise_id"] for s in (await r.json())["sites"]] == ["e-a"]
    r = await client.get("/api/v1/sites?enterprise_id=e-b", headers=ent)
    assert r.status == 403
    r = await client.get("/api/v1/sites", headers=admin)
    assert sorted(s["enterprise_id"] for s in (await r.json())["sites"]) == ["e-a", "e-b"]
