"""The downlink's two halves against a real PostgreSQL: the platform's Hub builds the answer from its tables,
the site's Downlink applies it through the blacklist's own service, the alerts table, plan files and vehicles."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import blacklist
from blacklist.store import Listing
from gate_service import keys as app_keys
from gate_service.link.downlink import Downlink
from gate_service.link.hub import Hub
from gate_service.link.status import LinkStatus
from gate_service.policy import load_policy_set
from gate_service.policy.loader import PLANS_DIR
from gate_service.policy.plans import examples
from gate_service.web import dumps

PLAN = __import__("pathlib").Path(examples.__file__).parent / "stricter-2025-26.toml"


class Police:
    role, actor, token_id = "police", "交警 李", None


async def test_hub_answer_applied_at_a_site(client, app, admin, tmp_path):
    pool = app[app_keys.POOL]
    bl = app[blacklist.APP_KEY]
    plans_src = tmp_path / "platform-plans"
    plans_src.mkdir()
    (plans_src / PLAN.name).write_text(PLAN.read_text(encoding="utf-8"), encoding="utf-8")
    hub = Hub(pool, (plans_src,))
    await hub.start()
    try:
        # The "platform" side: what the police, the bureau and the registry hold.
        await bl.add(Listing(plate="晋LA0001", reason="over_limit", note="超标"), Police())
        now = datetime.now(timezone.utc)
        await pool.execute("INSERT INTO alerts (level, starts_at, ends_at, declared_by) VALUES ('red', $1, $2, 'bureau')",
                           now, now + timedelta(days=1))
        await client.put("/api/v1/vehicles/晋LB0002", headers=admin, json={
            "plate_color": "yellow", "emission_stage": 6, "fuel_type": "diesel", "vehicle_class": "heavy_truck"})
        await hub.refresh()
        # As it travels: JSON, the way the downlink endpoint sends it.
        answer = json.loads(dumps(await hub.changes({})))
        assert set(answer["streams"]) == {"blacklist", "alerts", "plans", "vehicles"}
        # A site that is up to date waits, and is woken by a change.
        waiter = asyncio.ensure_future(hub.wait_newer(dict(answer["versions"]), 10))
        await asyncio.sleep(0.2)
        assert not waiter.done()
        await bl.add(Listing(plate="晋LA0003", reason="obd_tampering"), Police())
        # Woken by the change: well before the waiter's own 10 s would return it anyway (a loaded machine
        # may take seconds to carry the NOTIFY, so not a 3 s bound).
        await asyncio.wait_for(waiter, 8)
        assert hub.versions["blacklist"] != answer["versions"]["blacklist"]

        # The "site" side (same database here: what matters is that apply goes through the owners' code).
        reloaded = []
        status = LinkStatus("http://platform")
        down = Downlink(pool, None, status, blacklist=bl, plans_dir=tmp_path / "site-plans",
                        reload_plans=lambda folder: reloaded.append(load_policy_set(folder)))
        await down.apply(answer)
        assert (tmp_path / "site-plans" / PLAN.name).read_text(encoding="utf-8") == PLAN.read_text(encoding="utf-8")
        assert len(reloaded) == 1 and any(PLAN.name in str(p.source) for p in reloaded[0].policies)
        mirrored = await pool.fetchrow("SELECT level, declared_by FROM alerts WHERE platform_id IS NOT NULL")
        assert mirrored["level"] == "red" and mirrored["declared_by"].startswith("平台")
        await down.apply(answer)  # applying twice changes nothing
        assert await pool.fetchval("SELECT count(*) FROM alerts WHERE platform_id IS NOT NULL") == 1
        assert status.public()["blacklist_updated_at"] is not None
        stored = await pool.fetchval("SELECT version FROM link_downlink WHERE stream = 'blacklist'")
        assert stored == answer["versions"]["blacklist"]

        # The platform lifts an entry it listed: the site lifts it; an entry the site listed itself stays.
        await pool.execute("UPDATE blacklist_entries SET added_role = 'platform' WHERE plate = '晋LA0001'")
        lifted = {**answer, "streams": {"blacklist": {"version": "x", "entries": []}}}
        await down.apply(lifted)
        assert bl.lookup("晋LA0001", now) is None
        assert bl.lookup("晋LA0003", now) is not None
        # A plan file the site cannot load (its id clashes with a bundled plan) is refused; the old ones stay.
        clash = {"streams": {"plans": {"version": "bad", "files": [
            {"name": "again.toml", "text": (PLANS_DIR / "base.toml").read_text(encoding="utf-8")}]}}}
        await down.apply(clash)
        assert sorted(p.name for p in (tmp_path / "site-plans").iterdir()) == [PLAN.name]
        # Restarted offline: the last versions are known again.
        again = Downlink(pool, None, LinkStatus("http://platform"), blacklist=bl, plans_dir=tmp_path / "site-plans")
        await again.load()
        assert again.versions["blacklist"] == "x"
    finally:
        await hub.stop()
