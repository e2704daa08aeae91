"""The spool file format and a restart that finds passages waiting in it."""

from datetime import datetime, timezone
from decimal import Decimal
from uuid import uuid4

from gate_service import keys
from gate_service.ledger import store as ledger
from gate_service.passages.spool import Spool, decode_line, encode_line


def _row(gate="city-1", plate="晋LC3333", ref=None):
    now = datetime.now(timezone.utc)
    return {"id": uuid4(), "at": now, "recorded_at": now, "gate_id": gate, "enterprise_id": None, "zone_id": "city",
            "direction": "in", "plate": plate, "plate_color": "yellow", "source": "manual", "read": None,
            "vehicle": None, "registered": False, "emission_stage": None, "fuel_type": None, "vehicle_class": None,
            "cargo": "煤", "tonnes": Decimal("31.5"), "decision": "deny", "reasons": [{"rule": "r", "clause": "三(一)3",
                                                                                     "message": "禁止"}],
            "rules": ["r"], "policy_id": "base", "alert_level": None, "blacklisted": False, "clean": False,
            "snapshot_ref": None, "crop_ref": None, "video_segment_id": None, "video_offset_ms": None,
            "overrides": None, "override_reason": None, "token_id": None, "actor": "test", "client_ref": ref}


def test_lines_round_trip_and_damage_is_detected():
    row = _row()
    line = encode_line({"row": row, "response": {"decision": "deny"}})
    back = decode_line(line)
    assert back["row"] == row
    assert decode_line(line[:-5] + b"\n") is None  # torn
    assert decode_line(line.replace("煤".encode(), "铁".encode())) is None  # flipped content


async def test_spooled_passages_reach_the_ledger_on_restart(aiohttp_client, settings):
    from gate_service.app import create_app

    spool = Spool(settings.data_dir / "spool")
    rows = [_row(ref=f"r{i}") for i in range(3)]
    for row in rows:
        await spool.append(row, {"passage_id": str(row["id"])})
    # A crash mid-write leaves a torn last line: it was never acknowledged, so it is set aside, not replayed.
    path = next((settings.data_dir / "spool").glob("*.spool"))
    with open(path, "ab") as fh:
        fh.write(encode_line({"row": _row(), "response": {}})[:40])
    app = create_app(settings)
    client = await aiohttp_client(app)
    assert client is not None
    pool = app[keys.POOL]
    got = await pool.fetch("SELECT id, client_ref, tonnes FROM passages ORDER BY gate_seq")
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert got[0]["tonnes"] == Decimal("31.5")
    async with pool.acquire() as conn:
        assert (await ledger.verify(conn))[1] == []
    assert not list((settings.data_dir / "spool").glob("*.spool"))
    assert list((settings.data_dir / "spool").glob("*.damaged"))
    # Draining again (a second replica, a restart) writes nothing twice.
    again = Spool(settings.data_dir / "spool")
    for row in rows:
        await again.append(row, {})
    app[keys.JUDGE].spool = again
    assert await app[keys.JUDGE].drain_spool() == 0
    assert await pool.fetchval("SELECT count(*) FROM passages") == 3

