"""Migration 0013 on a ledger that already holds rows (as an older release left it): every existing row is in
epoch 0 and the chain still verifies; a platform's link tables gain their new columns without losing a row."""

from __future__ import annotations

from gate_service.db.migrate import apply_migrations
from gate_service.ledger.chain import HASHED_FIELDS
from gate_service.ledger.store import verify
from tests.link.test_batches import GATE, chain
from tests.scratch_db import database_before

_INSERT = (f"INSERT INTO passages ({', '.join(HASHED_FIELDS)}, prev_hash, hash) VALUES "
           f"({', '.join(f'${i}' for i in range(1, len(HASHED_FIELDS) + 3))})")


async def test_0013_keeps_an_existing_ledger_verifiable_in_epoch_0(server_dsn):
    async with database_before(server_dsn, "cg_upgrade_0013", 13) as conn:
        rows = chain(4)
        await conn.execute("INSERT INTO enterprises (id, name, industry) VALUES ('e-a', '甲', 'steel')")
        await conn.execute("INSERT INTO gates (id, name, zone_id, enterprise_id) VALUES ($1, '甲门', 'city', 'e-a')",
                           GATE)
        await conn.execute("SELECT ensure_passage_partition(date_trunc('month', now())::date)")
        for r in rows:
            await conn.execute(_INSERT, *[r[f] for f in HASHED_FIELDS], r["prev_hash"], r["hash"])
        await conn.execute("INSERT INTO gate_chain_heads (gate_id, seq, hash, at) VALUES ($1, 4, $2, $3)", GATE,
                           rows[-1]["hash"], rows[-1]["at"])
        await conn.execute("INSERT INTO api_tokens (id, token_hash, prefix, role, enterprise_id) "
                           "VALUES (5, '\\x05', 's1', 'site', 'e-a')")
        await conn.execute("INSERT INTO link_gate_heads (gate_id, site_id, seq, hash) VALUES ($1, 5, 4, $2)", GATE,
                           rows[-1]["hash"])
        assert (await apply_migrations(conn))[0] == "0013_link_media.sql"  # and whatever came after
        assert await conn.fetchval("SELECT array_agg(DISTINCT chain_epoch) FROM passages") == [0]
        assert await conn.fetchval("SELECT epoch FROM link_gate_heads WHERE gate_id = $1", GATE) == 0
        checked, breaks = await verify(conn, GATE)
        assert checked == 4 and breaks == []
