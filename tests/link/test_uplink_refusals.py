"""The site's uplink when the platform refuses a batch with an answer other than row_refused: that gate alone
waits a growing pause, the other gates go on, and the refusal shows in the link status until a batch passes.

The far side here is a stand-in adapter (the seam every province format plugs into), answering as a cleangate
platform does; the site's ledger, chain heads and key are real (PostgreSQL, the app's own passage route)."""

from __future__ import annotations

import asyncio

from gate_service import keys as app_keys
from gate_service.ledger.chain import GENESIS
from gate_service.link.adapter import Refused
from gate_service.link.keys import load_or_create
from gate_service.link.status import LinkStatus
from gate_service.link.uplink import Uplink

GATES = ("g-ra", "g-rb")


class StandInPlatform:
    """Answers sync like a platform that holds nothing yet; refuses g-ra's batches while ``refuse`` is set."""

    def __init__(self) -> None:
        self.refuse = True
        self.calls: dict[str, int] = {g: 0 for g in GATES}
        self.acked: dict[str, tuple[int, str]] = {g: (0, GENESIS.hex()) for g in GATES}

    def _state(self, gate: str) -> dict:
        seq, digest = self.acked[gate]
        return {"gate_id": gate, "acked_seq": seq, "acked_hash": digest, "chain": "ok", "first_bad_seq": None,
                "problem": None, "quarantine_seq": 0, "accepted": 0, "duplicates": 0, "quarantined": 0}

    async def enrol(self, public_key_b64: str, software: str) -> dict:
        return {"site_id": 1}

    async def sync(self, statement: dict, signature: bytes) -> dict:
        return {"gates": {g: self._state(g) for g in statement["heads"]}, "downlink": {}}

    async def send_batch(self, rows: list, statement: dict, signature: bytes) -> dict:
        gate = statement["gate_id"]
        self.calls[gate] += 1
        if gate == "g-ra" and self.refuse:
            raise Refused(422, "invalid_row", "行格式错误 / a row the platform cannot read", {"field": "rows"})
        self.acked[gate] = (rows[-1]["gate_seq"], rows[-1]["hash"])
        return self._state(gate)


async def test_a_refused_gate_waits_alone_and_says_why(client, app, admin, tmp_path):
    await client.put("/api/v1/enterprises/e-r", headers=admin, json={"name": "乙企业", "industry": "steel"})
    for g in GATES:
        await client.put(f"/api/v1/gates/{g}", headers=admin, json={"name": g, "enterprise_id": "e-r",
                                                                   "zone_id": "city"})
        for n in range(3):
            resp = await client.post(f"/api/v1/gates/{g}/passages", headers=admin,
                                     json={"plate": f"晋LE{n:04d}", "direction": "in", "client_ref": f"{g}-{n}"})
            assert resp.status == 201, await resp.text()
    platform = StandInPlatform()
    status = LinkStatus("http://platform.invalid")
    uplink = Uplink(app[app_keys.POOL], platform, load_or_create(tmp_path / "site"), status, max_backoff=2.0)
    for _ in range(5):  # back to back, as a hot loop would
        await uplink.step()
    assert platform.calls["g-ra"] == 1, platform.calls  # refused once, not resent in a loop
    assert platform.acked["g-rb"][0] == 3  # the other gate went on
    assert status.connected is True
    shown = status.public()["gates"]["g-ra"]["refused_row"]
    assert shown["code"] == "invalid_row" and shown["status"] == 422
    await asyncio.sleep(2.1)  # past the gate's pause (≤ max_backoff)
    await uplink.step()
    assert platform.calls["g-ra"] == 2
    platform.refuse = False
    await asyncio.sleep(2.1)
    await uplink.step()
    assert platform.acked["g-ra"][0] == 3 and "refused_row" not in status.public()["gates"]["g-ra"]
