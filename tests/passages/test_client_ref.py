"""Issue 15 item 11: a client_ref is bound to the body it came with."""

from __future__ import annotations

from datetime import datetime, timezone

from gate_service import keys
from gate_service.passages.judge import Judge, PassageInput
from gate_service.passages.spool import Spool
from tests.passages.conftest import CAMPAIGN_DAY


async def _post(client, headers, body):  # type: ignore[no-untyped-def]
    return await client.post("/api/v1/gates/g-a/passages", json=body, headers=headers)


async def test_same_ref_different_body_is_a_conflict(client, world, app) -> None:  # type: ignore[no-untyped-def]
    body = {"plate": "晋L12345D", "direction": "in", "at": CAMPAIGN_DAY, "client_ref": "kiosk-7", "tonnes": 30}
    first = await _post(client, world, body)
    assert first.status == 201
    # The same body again: the first answer, nothing new in the ledger.
    again = await _post(client, world, dict(reversed(list(body.items()))))  # key order does not matter
    assert again.status == 200 and (await again.json())["passage_id"] == (await first.json())["passage_id"]
    # Another plate (or any other field) under the same client_ref: refused, not answered with the first.
    for change in ({"plate": "晋LC3333"}, {"tonnes": 31}, {"direction": "out"}):
        resp = await _post(client, world, {**body, **change})
        assert resp.status == 409, await resp.text()
        error = (await resp.json())["error"]
        assert error["code"] == "client_ref_conflict" and error["field"] == "client_ref"
    assert await app[keys.POOL].fetchval("SELECT count(*) FROM passages") == 1


def _item(plate: str, body_hash: str) -> PassageInput:
    return PassageInput(gate_id="g-a", plate=plate, direction="in", at=datetime.now(timezone.utc),
                        client_ref="kiosk-9", body_hash=body_hash)


async def test_the_spool_keeps_the_binding(client, world, app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """While a passage waits in the spool, and after it has been written to the ledger from there."""
    import pytest

    from gate_service.errors import ApiError

    spool = Spool(tmp_path / "spool")
    judge = Judge(app[keys.POOL], app[keys.POLICIES], spool=spool)
    await judge.facts.load(app[keys.POOL])  # what an outage decides from
    # Decided during an outage (the spool path), as _record_offline does.
    spooled = await judge._record_offline(_item("晋L12345D", "aa" * 32), None, "test")
    assert spooled.response()["spooled"] is True
    with pytest.raises(ApiError) as refused:
        await judge.record(_item("晋LC3333", "bb" * 32), token_id=None, actor="test")
    assert refused.value.status == 409 and refused.value.code == "client_ref_conflict"
    replay = await judge.record(_item("晋L12345D", "aa" * 32), token_id=None, actor="test")
    assert replay.response()["passage_id"] == spooled.response()["passage_id"]
    # A new Spool over the same folder (a restart) still knows the body.
    restarted = Judge(app[keys.POOL], app[keys.POLICIES], spool=Spool(tmp_path / "spool"))
    with pytest.raises(ApiError):
        await restarted.record(_item("晋LC3333", "bb" * 32), token_id=None, actor="test")
    # Drained into the ledger: the binding moves with it.
    assert await restarted.drain_spool() == 1
    with pytest.raises(ApiError) as after:
        await restarted.record(_item("晋LC3333", "bb" * 32), token_id=None, actor="test")
    assert after.value.code == "client_ref_conflict"
    replay = await restarted.record(_item("晋L12345D", "aa" * 32), token_id=None, actor="test")
    assert replay.response()["passage_id"] == spooled.response()["passage_id"]
    assert await app[keys.POOL].fetchval("SELECT count(*) FROM passages") == 1


async def test_would_deny_guesses_from_memory_what_record_decides(client, world, app) -> None:  # type: ignore[no-untyped-def]
    """The tracker's question (issue 15 item 16), answered from the facts in memory, as the judge records."""
    judge = app[keys.JUDGE]
    at = datetime.now(timezone.utc)  # the tracker asks about frames of now
    for plate in ("晋L12345D", "晋LZ0001", "晋LC3333"):
        recorded = await judge.record(PassageInput(gate_id="city-1", plate=plate, direction="in", at=at),
                                      token_id=None, actor="test")
        assert judge.would_deny("city-1", plate, at) is (recorded.decision.decision == "deny")
    assert judge.would_deny("city-1", "晋LC3333", at) is True and judge.would_deny("city-1", "晋L12345D", at) is False
    assert judge.would_deny("no-such-gate", "晋LC3333", at) is False  # nothing known: no guess, no waiting
