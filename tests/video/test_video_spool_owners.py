"""Whose spool is whose: replicas sharing one data dir (deploy/SCALING.md §1, NFS) each record into a directory of
their own, locked while they run; a stopped recorder's directory is taken over by the next one exactly once.
Also the ordering guarantees of indexing (hash, file before row, per-sidecar retry, bounded shutdown).

The outage is a closed pool swapped in for the recorder's (every call then fails inside asyncpg, as when
PostgreSQL is down); everything else runs against the real PostgreSQL of the test.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from gate_service.db.connect import create_pool
from gate_service.video import indexing as indexing_module
from gate_service.video import recorder as recorder_module
from gate_service.video.recorder import CHANGED_NOTE, VideoRecorder
from gate_service.video.storage import LocalStore
from tests.waiting import until

T0 = datetime(2025, 1, 6, 2, 0, 0, tzinfo=timezone.utc)  # on a 2-second boundary: segments [0, 2), [2, 4), …
JUNK = b"\x00\x00\x00\x18ftypmp42 truncated"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
async def dead_pool(database_url):
    dead = await create_pool(database_url, min_size=0, max_size=1)
    await dead.close()
    return dead


@pytest.fixture
async def recorders(pool, store, tmp_path):
    made: list[VideoRecorder] = []

    def make(recorder_id: str, **options) -> VideoRecorder:
        options.setdefault("fps", 5.0)
        options.setdefault("segment_seconds", 2)
        recorder = VideoRecorder(pool, store, spool_dir=tmp_path / "spool", recorder_id=recorder_id, **options)
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        recorder.pool = pool
        await recorder.close()


async def stream(recorder: VideoRecorder, frames, start: float, end: float, gate: str = "g1") -> None:
    for i in range(round(start * 5), round(end * 5)):
        await recorder.add_frame(gate, at(i / 5), frames[i % len(frames)])
        await asyncio.sleep(0.003)


def snapshot(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


def crash_cut(directory: Path, recorder_id: str, started: float, name: str = "p-20250106T020010Z-deadbeef0001"
              ) -> Path:
    """What a run that died while recording provisionally leaves: a sidecar 'recording' and a file without index."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.mp4").write_bytes(JUNK)
    # Its mtime is the server's clock, far from the kiosk's started_at: it must not decide where the video ends.
    os.utime(directory / f"{name}.mp4", (time.time() + 86400, time.time() + 86400))
    sidecar = directory / f"{name}.json"
    sidecar.write_text(json.dumps({
        "kind": "provisional", "state": "recording", "gate_id": "g1", "started_at": at(started).isoformat(),
        "fps": 5.0, "width": 320, "height": 240, "recorder": recorder_id, "file": f"{name}.mp4"}))
    return sidecar


async def check_files(pool, store: LocalStore) -> list[asyncpg.Record]:
    rows = await pool.fetch("SELECT * FROM video_segments ORDER BY started_at")
    for row in (r for r in rows if r["status"] != "recording"):
        data = store.path(row["storage_key"]).read_bytes()
        assert (row["bytes"], row["sha256"]) == (len(data), hashlib.sha256(data).hexdigest()), row["id"]
    return rows


async def test_a_running_recorders_spool_is_left_alone_by_another(recorders, pool, store, dead_pool, frames):
    a = recorders("replica-a")
    await a.start()
    a.pool = dead_pool  # the database goes away for A
    await stream(a, frames, 0, 3)  # [0, 2) closed, waiting to be indexed; [2, 4) recording provisionally
    await until(lambda: a.pending_index == 1, what="[0, 2) closed into A's spool")
    (a.own_dir / "p-in-flight.json.tmp").write_text("{")  # a sidecar A is writing right now
    assert a.pending_index == 1
    before = snapshot(a.own_dir)
    assert len([n for n in before if n.endswith(".json")]) == 2

    b = recorders("replica-b")
    await b.start()  # the database is back; replica B starts on the shared data dir while A runs
    assert b.pending_index == 0 and await pool.fetchval("SELECT count(*) FROM video_segments") == 0
    assert snapshot(a.own_dir) == before  # nothing touched, moved, hashed or deleted

    a.pool = pool
    await stream(a, frames, 3, 4.2)  # A finishes [2, 4) and goes on into [4, 6)
    await a.close_gate("g1")
    # A's own background pass may index some of them first once its database is back (CI saw 2 of 3 left for
    # this call): what counts is that all three end up indexed, each once — the rows below.
    await a.index_pending()
    assert a.pending_index == 0
    rows = await check_files(pool, store)
    assert [r["started_at"] for r in rows] == [at(0), at(2), at(4)]  # each once, all A's
    assert {r["recorder"] for r in rows} == {"replica-a"} and {r["status"] for r in rows} == {"closed"}


async def test_a_dead_recorders_spool_is_recovered_once_by_the_next_recorder(recorders, pool, store, dead_pool,
                                                                           frames):
    c = recorders("replica-c")
    await c.start()
    c.pool = dead_pool
    await stream(c, frames, 0, 4)
    await c.close()  # database still down: two finished segments wait in C's directory, no longer locked
    assert c.pending_index == 2
    crash_cut(c.own_dir, "replica-c", 10)
    # And a segment C had opened with its row, cut short by a crash.
    seg_id = await pool.fetchval(
        """INSERT INTO video_segments (gate_id, started_at, storage_key, fps, width, height, recorder)
           VALUES ('g1', $1, 'video/g1/2025/01/06/lost.mp4', 5, 320, 240, 'replica-c') RETURNING id""", at(20))
    (c.own_dir / f"{seg_id}.mp4").write_bytes(JUNK)

    d, e = recorders("replica-d"), recorders("replica-e")
    await asyncio.gather(d.start(), e.start())  # two replicas starting at once: one of them takes it
    rows = await check_files(pool, store)
    assert [r["started_at"] for r in rows] == [at(0), at(2), at(10), at(20)]
    assert [r["status"] for r in rows] == ["closed", "closed", "incomplete", "incomplete"]
    assert {r["recorder"] for r in rows} == {"replica-c"}
    # The dead run's videos end at their slot's end (kiosk time), not at the file's mtime (server time).
    assert rows[2]["ended_at"] == at(12) and rows[3]["ended_at"] == at(22)
    spool = c.spool_dir
    assert sorted(p.name for p in spool.iterdir()) == ["replica-d", "replica-e"]
    assert [p.name for p in d.own_dir.iterdir()] == [".lock"] and [p.name for p in e.own_dir.iterdir()] == [".lock"]

    # C's host comes back: a fresh directory, nothing to do twice.
    c2 = recorders("replica-c")
    await c2.start()
    assert await c2.recover() == 0 and await pool.fetchval("SELECT count(*) FROM video_segments") == 4


async def test_an_earlier_flat_spool_is_recovered_only_by_the_host_that_wrote_it(recorders, pool, store):
    spool = store.root.parent / "spool"
    crash_cut(spool, "replica-x", 0, "p-20250106T020000Z-000000000001")
    theirs = crash_cut(spool, "replica-y", 2, "p-20250106T020002Z-000000000002")
    other_id = await pool.fetchval(
        """INSERT INTO video_segments (gate_id, started_at, storage_key, fps, width, height, recorder)
           VALUES ('g1', $1, 'video/g1/2025/01/06/y.mp4', 5, 320, 240, 'replica-y') RETURNING id""", at(4))
    (spool / f"{other_id}.mp4").write_bytes(JUNK)
    x = recorders("replica-x")
    assert await x.recover() == 1
    rows = await check_files(pool, store)
    assert [(r["started_at"], r["recorder"], r["status"]) for r in rows] == [(at(0), "replica-x", "incomplete"),
                                                                            (at(4), "replica-y", "recording")]
    assert sorted(p.name for p in spool.iterdir() if p.is_file()) == sorted(
        [theirs.name, theirs.with_suffix(".mp4").name, f"{other_id}.mp4"])


async def test_a_file_that_lost_its_tail_after_closing_is_indexed_with_its_real_hash(recorders, pool, store,
                                                                                   dead_pool, frames):
    first = recorders("replica-p")
    first.pool = dead_pool
    await stream(first, frames, 0, 2)
    await first.close_gate("g1")
    await first.close()
    mp4 = next(first.own_dir.glob("p-*.mp4"))
    mp4.write_bytes(mp4.read_bytes()[:1000])  # a power cut: the sidecar (fsync'd, with the hash) outlived the data
    again = recorders("replica-p")
    assert await again.recover() == 1
    [row] = await check_files(pool, store)
    assert row["bytes"] == 1000 and row["status"] == "incomplete" and row["note"].startswith(CHANGED_NOTE)


class FlakyStore(LocalStore):
    fail = 1

    async def put_file(self, key, path, *, move=True):
        if self.fail:
            self.fail -= 1
            raise OSError("store unreachable")
        return await super().put_file(key, path, move=move)


async def test_no_row_points_at_a_file_the_store_did_not_get(pool, tmp_path, dead_pool, frames, monkeypatch):
    monkeypatch.setattr(indexing_module, "INDEX_RETRY_MAX_SECONDS", 0.0)  # retry the failed one at once
    store = FlakyStore(tmp_path / "media")
    rec = VideoRecorder(pool, store, spool_dir=tmp_path / "spool", recorder_id="r3", fps=5, segment_seconds=2)
    try:
        rec.pool = dead_pool
        await stream(rec, frames, 0, 2)
        await rec.close_gate("g1")
        rec.pool = pool
        assert await rec.index_pending() == 0  # the move into the store failed
        assert await pool.fetchval("SELECT count(*) FROM video_segments") == 0
        assert await rec.index_pending() == 1
        [row] = await check_files(pool, store)
        assert row["status"] == "closed"
    finally:
        rec.pool = pool
        await rec.close()


async def test_one_bad_sidecar_does_not_hold_up_the_others(recorders, pool, store, dead_pool, frames):
    rec = recorders("r6")
    rec.own_dir.mkdir(parents=True)
    (rec.own_dir / "p-0-bad.json").write_text(json.dumps({  # no "file": fails on every pass, not for an outage
        "kind": "provisional", "state": "closed", "gate_id": "g9", "started_at": at(0).isoformat(),
        "ended_at": at(2).isoformat()}))
    await rec.start()
    assert rec.pending_index == 1
    rec.pool = dead_pool
    await stream(rec, frames, 0, 1)
    rec.pool = pool
    await rec.close_gate("g1")  # finished: indexed in the background at once, not a minute later
    async def indexed() -> bool:
        return rec.pending_index == 1 and await pool.fetchval("SELECT count(*) FROM video_segments") == 1

    await until(indexed, what="g1's segment indexed, the bad sidecar left")
    assert rec.pending_index == 1 and await pool.fetchval("SELECT count(*) FROM video_segments") == 1


async def test_shutdown_does_not_wait_forever_on_a_stuck_index_pass(recorders, pool, dead_pool, frames, database_url,
                                                                   monkeypatch):
    monkeypatch.setattr(recorder_module, "CLOSE_INDEX_SECONDS", 0.5)
    rec = recorders("r7")
    rec.pool = dead_pool
    await stream(rec, frames, 0, 1)
    await rec.close_gate("g1")
    rec.pool = pool
    blocker = await asyncpg.connect(database_url)
    try:
        async with blocker.transaction():
            # The database answers nothing about video_segments (a lock, a hung server): the pass hangs.
            await blocker.execute("LOCK TABLE video_segments IN ACCESS EXCLUSIVE MODE")
            rec._index_at = 0.0
            rec._kick_index()
            started = time.monotonic()
            await asyncio.wait_for(rec.close(), 10)
            assert time.monotonic() - started < 3
    finally:
        await blocker.close()
    assert rec.pending_index == 1 and any(rec.own_dir.glob("p-*.json"))  # left for the next start


async def test_a_closing_provisional_segment_answers_later_not_no_video(recorders, dead_pool, frames):
    rec = recorders("r4")
    rec.pool = dead_pool
    await stream(rec, frames, 0, 2)
    assert rec.unindexed_until("g1", at(0.4)) is not None  # open
    await rec.add_frame("g1", at(2.0), frames[0])  # rolls: [0, 2) closes in the background
    seen = []

    def closed() -> int:  # every few ms of the closing, until it waits in the spool
        seen.append(rec.unindexed_until("g1", at(0.4)))
        return rec.pending_index

    await until(closed, step=0.002, what="[0, 2) closed into the spool")
    assert rec.pending_index == 1 and None not in seen and len(seen) > 1


async def test_a_second_service_of_the_same_name_records_under_its_own_and_still_starts(recorders, frames):
    first = recorders("gate-host")
    await first.start()
    second = recorders("gate-host", lock_wait=0.2)
    await second.start()  # never refused: video must not keep the gates from deciding
    assert second.recorder_id == f"gate-host-{os.getpid()}" and second.own_dir != first.own_dir
    assert first.recorder_id == "gate-host"
    await stream(second, frames, 0, 1)
    assert any(second.own_dir.iterdir())
