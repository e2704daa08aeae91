"""Video keeps recording while PostgreSQL is down: provisional segments wait in the spool with a sidecar and are
indexed exactly once when it is back, even across a restart cut short between the steps.

A real PostgreSQL of this module's own is stopped and started again (as tests/resilience/test_outage.py does);
nothing of the database is mocked.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import subprocess
import tempfile
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from gate_service.db.connect import _init_connection, create_pool
from gate_service.db.embedded import embedded_server
from gate_service.db.migrate import apply_migrations
from gate_service.video import recorder as recorder_module
from gate_service.video.recorder import PROVISIONAL_NOTE, VideoRecorder
from gate_service.video.storage import LocalStore
from tests.conftest import with_database
from tests.pg_outage import start_server, stop_server
from tests.waiting import until

T0 = datetime(2025, 1, 6, 2, 0, 0, tzinfo=timezone.utc)  # on a 2-second boundary: segments [0, 2), [2, 4), …


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def own_server():
    """A PostgreSQL of this module's own: its tests stop and start it."""
    root = Path(tempfile.mkdtemp(prefix="cg-vout-"))
    # Stopped and removed here: pgserver's own cleanup would look for the postmaster it started (long gone,
    # the tests restart the server) and leave the restarted one running.
    server = embedded_server(root, cleanup_mode=None)
    yield server
    stop_server(server, mode="immediate")
    server.cleanup()
    # Deleting the cluster's files takes seconds on some file systems: not in the test's time.
    subprocess.Popen(["rm", "-rf", str(root)], start_new_session=True)


class Outage:
    def __init__(self, server) -> None:
        self.server = server
        self.down = False

    async def stop(self) -> None:
        await asyncio.to_thread(stop_server, self.server)
        self.down = True

    async def start(self) -> None:
        await asyncio.to_thread(start_server, self.server)
        self.down = False


@pytest.fixture
async def outage(own_server):
    control = Outage(own_server)
    yield control
    if control.down:  # a failed test must not leave the module's server stopped
        await control.start()


@pytest.fixture
async def pool(own_server, outage):
    name = "vout_" + uuid.uuid4().hex[:10]
    admin = await asyncpg.connect(own_server.get_uri())
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = with_database(own_server.get_uri(), name)
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    await apply_migrations(conn)
    await conn.close()
    pool = await create_pool(dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
def quick_retry(monkeypatch):
    # Ask the database again 0.3 s after a failed open (5 s in service), so the test sees it come back quickly.
    monkeypatch.setattr(recorder_module, "OPEN_RETRY_SECONDS", 0.3)


async def stream(recorder: VideoRecorder, frames, start: float, end: float, gate: str = "g1"):
    """Frames at 5 fps from ``start`` to ``end`` seconds (exclusive), arriving over time like a kiosk's."""
    out = []
    i = round(start * 5)
    while i < round(end * 5):
        out.append(await recorder.add_frame(gate, at(i / 5), frames[i % len(frames)]))
        await asyncio.sleep(0.003)
        i += 1
    return out


async def wait_indexed(recorder: VideoRecorder, seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if recorder.pending_index == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{recorder.pending_index} segment(s) still pending after {seconds} s")


def spool_files(recorder: VideoRecorder) -> list[str]:
    """What is in the recorder's own spool directory, its lock file aside."""
    own = recorder.own_dir
    return sorted(p.name for p in own.iterdir() if p.name != ".lock") if own.is_dir() else []


async def check_segment(pool, store: LocalStore, row, read_back, frame_size, frames: int | None) -> None:
    path = store.path(row["storage_key"])
    data = path.read_bytes()
    assert row["bytes"] == len(data) > 0
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    if frames is not None:
        assert row["frames"] == frames
        assert read_back(path) == (frames, frame_size)
    assert re.fullmatch(f"video/g1/2025/01/06/{row['started_at']:%Y%m%dT%H%M%S}Z-{row['id']}-[0-9a-f]{{32}}\\.mp4",
                        row["storage_key"]), row["storage_key"]


async def test_outage_mid_stream_video_is_recorded_locally_then_indexed(
        pool, store, tmp_path, frames, outage, quick_retry, read_back, frame_size, caplog):
    caplog.set_level(logging.INFO, logger="gate_service.video.recorder")
    recorder = VideoRecorder(pool, store, spool_dir=tmp_path / "spool", fps=5, segment_seconds=2, idle_seconds=3)
    await recorder.start()
    try:
        before = await stream(recorder, frames, 0, 1)  # segment A, [0, 2), has its row
        assert len({seg for seg, _ in before}) == 1 and before[0][0] is not None
        seg_a = before[0][0]

        await outage.stop()
        during = await stream(recorder, frames, 1, 6)
        # A goes on with its id until it rolls at 2 s; then provisional segments [2, 4) and [4, 6): no id.
        assert {seg for seg, _ in during[:5]} == {seg_a}
        assert all(result == (None, 0) for result in during[5:])
        # The closing of A and of [2, 4) finishes in the background: then both wait in the spool.
        await until(lambda: recorder.pending_index == 2, what="A and [2, 4) closed into the spool")
        names = spool_files(recorder)
        # A's file is in the store, its closing values wait; [2, 4) is finished and waits; [4, 6) records.
        assert f"close-{seg_a}.json" in names
        provisional = [n for n in names if n.startswith("p-")]
        assert len([n for n in provisional if n.endswith(".json")]) == 2
        assert len([n for n in provisional if n.endswith(".mp4")]) == 2
        assert recorder.pending_index == 2
        waiting = next(json.loads((recorder.own_dir / n).read_text()) for n in provisional
                       if n.endswith(".json") and json.loads((recorder.own_dir / n).read_text())["state"] == "closed")
        assert (waiting["gate_id"], waiting["started_at"], waiting["fps"], waiting["width"], waiting["height"]) == (
            "g1", at(2).isoformat(), 5.0, frame_size[0], frame_size[1])
        assert waiting["frames"] == 10 and waiting["recorder"] == recorder.recorder_id

        await outage.start()
        await asyncio.sleep(0.35)  # past the (shortened) wait before asking the database again
        after = await stream(recorder, frames, 6, 8)  # [4, 6) closes; [6, 8) opens with its row again
        assert after[0][0] is not None and len({seg for seg, _ in after}) == 1
        await recorder.close_gate("g1")
        await wait_indexed(recorder)
    finally:
        await recorder.close()

    rows = await pool.fetch("SELECT * FROM video_segments WHERE gate_id = 'g1' ORDER BY started_at")
    assert [r["started_at"] for r in rows] == [at(0), at(2), at(4), at(6)]  # one row each, none twice
    assert all(r["status"] == "closed" and r["ended_at"] == r["started_at"] + timedelta(seconds=2) for r in rows)
    for row in rows:
        await check_segment(pool, store, row, read_back, frame_size, frames=10)
    assert rows[0]["id"] == seg_a and rows[0]["note"] is None
    assert [r["note"] for r in rows[1:3]] == [PROVISIONAL_NOTE] * 2
    assert rows[3]["id"] == after[0][0]
    assert spool_files(recorder) == []
    messages = [r.getMessage() for r in caplog.records]
    assert sum("recording to local disk" in m for m in messages) == 1
    assert sum(int(m.split()[2]) for m in messages if m.startswith("video: indexed ")) == 2


async def test_restart_indexes_pending_sidecars_exactly_once_whatever_step_a_crash_cut(
        pool, store, tmp_path, frames, outage, read_back, frame_size):
    spool = tmp_path / "spool"
    first = VideoRecorder(pool, store, spool_dir=spool, fps=5, segment_seconds=2)
    await outage.stop()
    results = await stream(first, frames, 0, 6)  # three provisional segments, the last closed at shutdown
    assert all(seg is None for seg, _ in results)
    await first.close()  # the database is still down: everything stays in the spool
    own = first.own_dir
    sidecars = sorted(own.glob("p-*.json"))
    assert len(sidecars) == 3 and len(list(own.glob("p-*.mp4"))) == 3
    # A run that died while recording a fourth one provisionally: a file without its MP4 index.
    junk = b"\x00\x00\x00\x18ftypmp42 truncated"
    (own / "p-20250106T020010Z-deadbeef0001.mp4").write_bytes(junk)
    (own / "p-20250106T020010Z-deadbeef0001.json").write_text(json.dumps({
        "kind": "provisional", "state": "recording", "gate_id": "g1", "started_at": at(10).isoformat(), "fps": 5.0,
        "width": frame_size[0], "height": frame_size[1], "recorder": first.recorder_id,
        "file": "p-20250106T020010Z-deadbeef0001.mp4"}))
    await outage.start()

    # A pass cut short at each step: after choosing the id, after the move into the store, after the row's commit.
    cut = VideoRecorder(pool, store, spool_dir=spool, fps=5, segment_seconds=2)
    reserved = []
    for steps, sidecar in zip((1, 2, 3), sidecars, strict=True):
        side = await cut._reserve(sidecar, json.loads(sidecar.read_text()))
        reserved.append(side["id"])
        if steps >= 2:
            await cut._move_file(sidecar, side)
        if steps >= 3:
            await cut._insert_row(sidecar, side)
    await cut.close()
    assert await pool.fetchval("SELECT count(*) FROM video_segments") == 1

    again = VideoRecorder(pool, store, spool_dir=spool, fps=5, segment_seconds=2)
    await again.start()
    await again.close()
    assert spool_files(again) == []
    rows = await pool.fetch("SELECT * FROM video_segments ORDER BY started_at")
    assert [r["started_at"] for r in rows] == [at(0), at(2), at(4), at(10)]
    assert [r["id"] for r in rows[:3]] == reserved  # the ids chosen before the cut, each used once
    for row in rows[:3]:
        assert row["status"] == "closed" and row["note"] == PROVISIONAL_NOTE
        await check_segment(pool, store, row, read_back, frame_size, frames=10)
    dead = rows[3]
    assert dead["status"] == "incomplete" and dead["bytes"] == len(junk)
    assert dead["sha256"] == hashlib.sha256(junk).hexdigest() and dead["ended_at"] >= dead["started_at"]
    assert store.path(dead["storage_key"]).read_bytes() == junk

    # Another restart finds nothing to do and adds nothing.
    third = VideoRecorder(pool, store, spool_dir=spool, fps=5, segment_seconds=2)
    assert await third.recover() == 0
    await third.close()
    assert await pool.fetchval("SELECT count(*) FROM video_segments") == 4
