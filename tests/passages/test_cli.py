"""The operator's commands against a real ledger: ledger verify, policy check, policy replay."""

import asyncio
import os
import sys

from gate_service import keys
from gate_service.policy.plans import __file__ as plans_init

PLANS = os.path.dirname(plans_init)


async def _cli(database_url, *args):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gate_service", *args,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def _world(client, admin, token):
    await client.put("/api/v1/enterprises/e-b", json={"name": "B级钢铁", "industry": "steel", "county": "尧都区",
                                                      "zone_id": "other", "grade": "B"}, headers=admin)
    await client.put("/api/v1/gates/g-b", json={"name": "北门", "enterprise_id": "e-b", "zone_id": "other"},
                     headers=admin)
    await client.put("/api/v1/vehicles/晋LB4444", json={"plate_color": "yellow", "emission_stage": 4,
                                                        "fuel_type": "diesel", "vehicle_class": "heavy_truck"},
                     headers=admin)
    await client.put("/api/v1/vehicles/晋L12345D", json={"plate_color": "yellow-green", "fuel_type": "electric",
                                                         "vehicle_class": "heavy_truck"}, headers=admin)
    ecology = await token("ecology")
    resp = await client.post("/api/v1/alerts", json={"level": "yellow", "starts_at": "2024-11-10T00:00:00+08:00",
                                                     "ends_at": "2024-11-20T00:00:00+08:00"}, headers=ecology)
    assert resp.status == 201
    for day in (11, 12, 13):
        for plate in ("晋LB4444", "晋L12345D"):
            resp = await client.post("/api/v1/gates/g-b/passages", json={
                "plate": plate, "direction": "in", "at": f"2024-11-{day}T08:00:00+08:00"}, headers=admin)
            assert resp.status == 201


async def test_ledger_verify_cli_exit_codes(client, admin, token, database_url, app):
    await _world(client, admin, token)
    code, out, _ = await _cli(database_url, "ledger", "verify")
    assert code == 0 and "6 passages" in out
    async with app[keys.POOL].acquire() as conn:
        await conn.execute("ALTER TABLE passages DISABLE TRIGGER passages_append_only")
        await conn.execute("UPDATE passages SET plate_color = 'green' WHERE gate_seq = 4")
    code, _, err = await _cli(database_url, "ledger", "verify")
    assert code == 1
    assert "gate g-b seq 4" in err


async def test_policy_check_cli(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\nkind = "plan"\n[[rules]]\nid = "r"\nclause = "nonsense"\n', encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gate_service", "policy", "check", str(bad),
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 1
    assert b"error" in out
    good = os.path.join(PLANS, "linfen-2024-25.toml")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "gate_service", "policy", "check", good,
                                                stdout=asyncio.subprocess.PIPE)
    await proc.communicate()
    assert proc.returncode == 0


async def test_policy_replay_reports_changed_decisions(client, admin, token, database_url, tmp_path):
    await _world(client, admin, token)
    same = os.path.join(PLANS, "linfen-2024-25.toml")
    code, out, err = await _cli(database_url, "policy", "replay", "--policy", same, "--from", "2024-11-01",
                                "--to", "2024-11-30", "--json")
    assert code == 0, err
    import json

    unchanged = json.loads(out)
    assert unchanged["total"] == 6 and unchanged["changed"] == 0
    # The stricter draft, its dates moved back onto last winter (as its header explains).
    draft = open(os.path.join(PLANS, "examples", "stricter-2025-26.toml"), encoding="utf-8").read()
    draft = draft.replace("2025-", "2024-").replace("2026-", "2025-")
    path = tmp_path / "stricter-2024-25.toml"
    path.write_text(draft, encoding="utf-8")
    code, out, err = await _cli(database_url, "policy", "replay", "--policy", str(path), "--from", "2024-11-01",
                                "--to", "2024-11-30", "--json")
    assert code == 0, err
    changed = json.loads(out)
    assert changed["total"] == 6
    assert changed["allow_to_deny"] == 3  # the 国4 diesel truck on each day of the yellow alert
    assert sum(changed["newly_denied_by"].values()) >= 3
