"""The platform's checks on a batch, driven over HTTP against the real app and PostgreSQL: signed batches
built with the ledger's own chain code, as a site would send them."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import datetime, timezone
from uuid import uuid4

from gate_service import keys as app_keys
from gate_service.ledger.chain import GENESIS, link
from gate_service.link import enrol
from gate_service.link.keys import load_or_create
from gate_service.link.wire import encode_row, statement_bytes
from gate_service.web import dumps

GATE = "g-a"


def chain(n: int, start: int = 1, prev: bytes = GENESIS, plate: str = "晋LA{seq:04d}") -> list[dict]:
    rows = []
    for seq in range(start, start + n):
        now = datetime.now(timezone.utc)
        row = {"id": uuid4(), "at": now, "recorded_at": now, "gate_id": GATE, "gate_seq": seq, "enterprise_id": "e-a",
               "zone_id": "city", "direction": "in", "plate": plate.format(seq=seq), "plate_color": "yellow",
               "source": "manual", "read": None, "vehicle": {"emission_stage": 6, "note": "国六"}, "registered": True,
               "emission_stage": 6, "fuel_type": "diesel", "vehicle_class": "heavy_truck", "cargo": None,
               "tonnes": None, "decision": "allow", "reasons": [], "rules": [], "policy_id": "base",
               "alert_level": None, "blacklisted": False, "clean": True, "snapshot_ref": None, "crop_ref": None,
               "video_segment_id": None, "video_offset_ms": None, "overrides": None, "override_reason": None,
               "token_id": None, "actor": "site", "client_ref": f"r-{seq}"}
        row["prev_hash"], row["hash"] = prev, link(prev, row)
        prev = row["hash"]
        rows.append(row)
    return rows


class Site:
    def __init__(self, client, headers, key, site_id):
        self.client, self.headers, self.key, self.site_id = client, headers, key, site_id

    async def send(self, rows, *, head=None, sign_with=None, tamper=None):
        wire = [encode_row(r) for r in rows]
        if tamper:
            tamper(wire)
        last = rows[-1]
        head = head or last
        statement = {"kind": "batch", "site_id": self.site_id, "gate_id": GATE, "first": rows[0]["gate_seq"],
                     "last": [last["gate_seq"], last["hash"].hex()], "site_head": [head["gate_seq"], head["hash"].hex()],
                     "sent_at": datetime.now(timezone.utc).isoformat()}
        sig = (sign_with or self.key).sign(statement_bytes(statement))
        body = gzip.compress(dumps({"statement": statement, "signature": base64.b64encode(sig).decode(),
                                    "rows": wire}).encode())
        resp = await self.client.post("/api/v1/link/batches", data=body,
                                      headers={**self.headers, "Content-Type": "application/gzip"})
        return resp.status, await resp.json()


async def _site(client, app, admin, tmp_path) -> Site:
    await client.put("/api/v1/enterprises/e-a", headers=admin, json={"name": "甲企业", "industry": "steel"})
    await client.put(f"/api/v1/gates/{GATE}", headers=admin, json={"name": "甲门", "enterprise_id": "e-a",
                                                                  "zone_id": "city"})
    site_id, secret = await enrol.create_site_token(app[app_keys.POOL], enterprise_id="e-a", gate_ids=[])
    headers = {"Authorization": f"Bearer {secret}"}
    key = load_or_create(tmp_path / "site")
    resp = await client.post("/api/v1/link/enrol", headers=headers, json={"public_key": key.public_b64})
    assert resp.status == 200
    return Site(client, headers, key, site_id)


async def test_resent_batch_is_acknowledged_not_doubled(client, app, admin, tmp_path):
    site = await _site(client, app, admin, tmp_path)
    rows = chain(30)
    status, first = await site.send(rows[:20])
    assert status == 200 and first["accepted"] == 20 and first["acked_seq"] == 20
    status, again = await site.send(rows[:20])
    assert status == 200 and again["accepted"] == 0 and again["duplicates"] == 20 and again["chain"] == "ok"
    status, overlap = await site.send(rows[10:30])
    assert overlap["accepted"] == 10 and overlap["duplicates"] == 10 and overlap["acked_seq"] == 30
    pool = app[app_keys.POOL]
    assert await pool.fetchval("SELECT count(*) FROM passages WHERE gate_id = $1", GATE) == 30
    assert await pool.fetchval("SELECT count(*) FROM link_signed_heads WHERE gate_id = $1", GATE) == 3
    # The reports see uploaded rows (the transport_daily trigger fired on the platform's inserts).
    assert await pool.fetchval("SELECT sum(trips) FROM transport_daily WHERE enterprise_id = 'e-a'") == 30


async def test_gap_and_changed_content_break_the_chain_and_are_quarantined(client, app, admin, tmp_path):
    site = await _site(client, app, admin, tmp_path)
    rows = chain(10)
    await site.send(rows[:5])
    status, gap = await site.send(rows[6:])  # seq 6 never sent
    assert status == 200 and gap["chain"] == "broken" and gap["first_bad_seq"] == 7 and gap["acked_seq"] == 5
    assert "gap" in gap["problem"]
    pool = app[app_keys.POOL]
    assert await pool.fetchval("SELECT count(*) FROM passages WHERE gate_id = $1", GATE) == 5
    assert await pool.fetchval("SELECT count(*) FROM link_quarantine WHERE gate_id = $1", GATE) == 4
    # Once broken, even well-formed rows stay apart.
    status, later = await site.send(rows[5:6])
    assert later["chain"] == "broken" and later["quarantined"] == 1 and later["accepted"] == 0


async def test_a_row_changed_without_rehashing_is_caught(client, app, admin, tmp_path):
    site = await _site(client, app, admin, tmp_path)
    rows = chain(6)

    def tamper(wire):
        wire[3]["plate"] = "晋LZ0000"  # seq 4 edited, hash left as it was

    status, out = await site.send(rows, tamper=tamper)
    assert status == 200 and out["chain"] == "broken" and out["first_bad_seq"] == 4 and out["acked_seq"] == 3
    assert "hash" in out["problem"]


async def test_bad_signature_and_bad_bodies_are_refused_without_a_trace(client, app, admin, tmp_path):
    site = await _site(client, app, admin, tmp_path)
    rows = chain(3)
    status, out = await site.send(rows, sign_with=load_or_create(tmp_path / "other"))
    assert status == 401 and out["error"]["code"] == "bad_signature"
    resp = await client.post("/api/v1/link/batches", data=b"not gzip",
                             headers={**site.headers, "Content-Type": "application/gzip"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_gzip"
    bomb = gzip.compress(b"[" + b" " * (80 * 1024 * 1024) + b"]")
    resp = await client.post("/api/v1/link/batches", data=bomb,
                             headers={**site.headers, "Content-Type": "application/gzip"})
    assert resp.status == 413
    resp = await client.post("/api/v1/link/batches", data=gzip.compress(json.dumps({"statement": {}}).encode()),
                             headers={**site.headers, "Content-Type": "application/gzip"})
    assert resp.status == 422
    assert await app[app_keys.POOL].fetchval("SELECT count(*) FROM passages") == 0


async def test_media_only_for_the_sites_own_uploaded_passages(client, app, admin, tmp_path):
    site = await _site(client, app, admin, tmp_path)
    rows = chain(1)
    rows[0]["snapshot_ref"] = "snapshots/g-a/2026/12/01/x.jpg"
    rows[0]["hash"] = link(GENESIS, rows[0])
    await site.send(rows)
    jpeg = b"\xff\xd8\xff\xe0fake-but-bytes\xff\xd9"
    resp = await client.put("/api/v1/link/media/snapshots/g-a/2026/12/01/x.jpg", data=jpeg,
                            headers={**site.headers, "Content-Type": "image/jpeg"})
    assert resp.status == 200, await resp.text()
    assert await app[app_keys.MEDIA_STORE].read("snapshots/g-a/2026/12/01/x.jpg") == jpeg
    resp = await client.put("/api/v1/link/media/snapshots/g-b/2026/12/01/other.jpg", data=jpeg,
                            headers={**site.headers, "Content-Type": "image/jpeg"})
    assert resp.status == 404


async def test_a_row_naming_another_enterprise_is_kept_apart(client, app, admin, tmp_path):
    site = await _site(client, app, admin, tmp_path)
    rows = chain(4)
    rows[2]["enterprise_id"] = "e-b"  # would land in e-b's ledger and reports
    prev = rows[1]["hash"]
    for row in rows[2:]:
        row["prev_hash"], row["hash"] = prev, link(prev, row)
        prev = row["hash"]
    status, out = await site.send(rows)
    assert status == 200 and out["chain"] == "broken" and out["first_bad_seq"] == 3 and out["acked_seq"] == 2
    assert await app[app_keys.POOL].fetchval("SELECT count(*) FROM passages WHERE enterprise_id = 'e-b'") == 0


async def test_a_batch_past_its_own_signed_head_is_refused_not_taken_for_a_cut(client, app, admin, tmp_path):
    # A site that read its head, then sent rows written after it: its signed site_head is older than its rows.
    # That once broke the chain ("rows after seq 3 were removed") for an honest site under load.
    site = await _site(client, app, admin, tmp_path)
    rows = chain(5)
    status, out = await site.send(rows, head=rows[2])
    assert status == 422 and out["error"]["code"] == "head_mismatch"
    status, out = await site.send(rows)
    assert status == 200 and out["chain"] == "ok" and out["acked_seq"] == 5
