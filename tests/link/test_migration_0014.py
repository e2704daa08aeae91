"""Migration 0014 on a platform whose roll-ups already counted a truck twice: two overrides of one refused
passage at the same seq in two epochs (a resolved break, 0013). The days it touched are recounted."""

from __future__ import annotations

from datetime import timedelta

from gate_service.db.migrate import apply_migrations
from gate_service.ledger.chain import HASHED_FIELDS
from tests.link.test_batches import GATE, chain
from tests.scratch_db import database_before

_INSERT = (f"INSERT INTO passages ({', '.join(HASHED_FIELDS)}, prev_hash, hash, chain_epoch) VALUES "
           f"({', '.join(f'${i}' for i in range(1, len(HASHED_FIELDS) + 4))})")


async def test_0014_recounts_days_a_resolved_break_counted_twice(server_dsn):
    async with database_before(server_dsn, "cg_upgrade_0014", 14) as conn:
        await conn.execute("INSERT INTO enterprises (id, name, industry) VALUES ('e-a', '甲', 'steel')")
        await conn.execute("INSERT INTO gates (id, name, zone_id, enterprise_id) VALUES ($1, '甲门', 'city', 'e-a')",
                           GATE)
        await conn.execute("SELECT ensure_passage_partition(date_trunc('month', now())::date)")
        refused, first, again = chain(2) + chain(1, start=2, plate="晋LB{seq:04d}")
        refused.update(decision="deny", clean=False)
        first.update(overrides=refused["id"])
        again.update(overrides=refused["id"], recorded_at=again["recorded_at"] - timedelta(hours=1))
        for row, epoch in ((refused, 0), (first, 0), (again, 1)):
            await conn.execute(_INSERT, *[row[f] for f in HASHED_FIELDS], row["prev_hash"], row["hash"], epoch)
        counted = "SELECT (SELECT sum(trips) FROM transport_daily), (SELECT sum(trips) FROM transport_monthly)"
        assert tuple(await conn.fetchrow(counted)) == (2, 2)  # what 0004's rule did: one truck, two trips
        assert (await apply_migrations(conn))[0] == "0014_link_retention_epochs.sql"
        assert tuple(await conn.fetchrow(counted)) == (1, 1)
