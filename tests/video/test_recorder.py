"""The recorder on real frames: readable MP4s, the index row, offsets, roll-over, flush and recovery."""

from __future__ import annotations

import hashlib
import socket
from datetime import datetime, timedelta, timezone

import cv2
import numpy as np

T0 = datetime(2025, 1, 6, 2, 0, 0, tzinfo=timezone.utc)  # on a 10-minute (and 2-second) boundary


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_segment_is_readable_with_the_right_frames_and_indexed(make_recorder, frames, pool, store, read_back,
                                                                     frame_size):
    recorder = make_recorder()
    results = [await recorder.add_frame("g1", at(i * 0.2), frames[i % len(frames)]) for i in range(10)]
    seg_ids = {seg for seg, _ in results}
    assert len(seg_ids) == 1 and None not in seg_ids
    offsets = [off for _, off in results]
    assert offsets == [i * 200 for i in range(10)]

    # The row exists while recording, so a passage can point at it at once.
    row = await pool.fetchrow("SELECT * FROM video_segments WHERE id = $1", results[0][0])
    assert row["status"] == "recording" and row["ended_at"] is None and row["gate_id"] == "g1"

    closed = await recorder.close_gate("g1")
    assert closed is not None and closed.frames == 10 and closed.status == "closed"
    row = await pool.fetchrow("SELECT * FROM video_segments WHERE id = $1", results[0][0])
    path = store.path(row["storage_key"])
    data = path.read_bytes()
    assert row["status"] == "closed"
    assert row["bytes"] == len(data) > 0
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    assert row["frames"] == 10
    assert row["ended_at"] == at(2.0)
    assert row["storage_key"].startswith("video/g1/2025/01/06/") and row["storage_key"].endswith(".mp4")
    assert read_back(path) == (10, frame_size)
    # Nothing is left in the spool.
    assert not list(recorder.spool_dir.glob("*.mp4"))


async def test_pauses_are_filled_and_faster_frames_left_out_so_video_time_is_wall_time(make_recorder, frames,
                                                                                       store, pool, read_back):
    recorder = make_recorder()
    seg, first = await recorder.add_frame("g1", at(0), frames[0])
    _, same_slot = await recorder.add_frame("g1", at(0.05), frames[1])  # within the same 200 ms slot
    _, later = await recorder.add_frame("g1", at(3.0), frames[2])  # 3 s pause: slots 1..14 repeat frame 0
    assert (first, same_slot, later) == (0, 50, 3000)
    assert recorder.frames_left_out == 1
    closed = await recorder.close_gate("g1")
    assert closed.frames == 16
    key = await pool.fetchval("SELECT storage_key FROM video_segments WHERE id = $1", seg)
    count, _ = read_back(store.path(key))
    assert count == 16
    # The frame at 3.0 s is where the offset says: frame 15 at 5 fps.
    cap = cv2.VideoCapture(str(store.path(key)))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 15)
    ok, picture = cap.read()
    cap.release()
    assert ok
    assert np.abs(picture.astype(int) - frames[2].astype(int)).mean() < np.abs(
        picture.astype(int) - frames[0].astype(int)).mean()


async def test_segments_roll_on_the_clock_on_resolution_change_and_after_a_long_pause(make_recorder, frames, pool):
    recorder = make_recorder(segment_seconds=2, max_gap_seconds=5)
    ids = []
    for i in range(25):  # 5 s at 5 fps: segments [0, 2), [2, 4), [4, 5)
        seg, off = await recorder.add_frame("g1", at(i * 0.2), frames[i % len(frames)])
        ids.append(seg)
        assert off == round((i * 0.2 % 2) * 1000)
    assert len(set(ids)) == 3 and ids == sorted(ids)
    big = cv2.resize(frames[0], (640, 480))
    seg_big, off_big = await recorder.add_frame("g1", at(5.0), big)
    assert seg_big not in ids and off_big == 0
    seg_late, _ = await recorder.add_frame("g1", at(11.5), big)  # 6.5 s of silence > max_gap
    assert seg_late != seg_big
    # Another gate records on its own.
    other, _ = await recorder.add_frame("g2", at(0.1), frames[0])
    await recorder.close()
    rows = await pool.fetch("SELECT id, gate_id, frames, status, width, started_at, ended_at FROM video_segments "
                            "ORDER BY id")
    assert [r["status"] for r in rows] == ["closed"] * 6
    by_id = {r["id"]: r for r in rows}
    assert [by_id[i]["frames"] for i in sorted(set(ids))] == [10, 10, 5]
    assert by_id[seg_big]["width"] == 640 and by_id[seg_big]["frames"] == 1
    assert by_id[other]["gate_id"] == "g2"
    assert by_id[sorted(set(ids))[1]]["started_at"] == at(2.0)
    assert by_id[sorted(set(ids))[1]]["ended_at"] == at(4.0)


async def test_idle_segments_are_closed_in_the_background(make_recorder, frames, pool):
    from tests.waiting import until

    recorder = make_recorder(idle_seconds=0.3)
    await recorder.start()
    seg, _ = await recorder.add_frame("g1", datetime.now(timezone.utc), frames[0])

    async def closed() -> bool:
        return await pool.fetchval("SELECT status FROM video_segments WHERE id = $1", seg) == "closed"

    await until(closed, step=0.1, what="the idle segment closed")
    assert await pool.fetchval("SELECT status FROM video_segments WHERE id = $1", seg) == "closed"
    assert recorder.open_segment_id("g1") is None


async def test_bad_images_are_refused_without_raising(make_recorder):
    recorder = make_recorder()
    assert await recorder.add_frame("g1", at(0), np.zeros((10, 10, 3), np.float32)) == (None, 0)


async def test_recover_keeps_what_a_stopped_run_left_in_the_spool(make_recorder, pool, store, tmp_path):
    seg_id = await pool.fetchval(
        """INSERT INTO video_segments (gate_id, started_at, storage_key, fps, width, height, recorder)
           VALUES ('g1', $1, 'video/g1/2025/01/06/lost.mp4', 5, 320, 240, $2) RETURNING id""",
        at(0), socket.gethostname())
    spool = tmp_path / "spool"
    spool.mkdir()
    junk = b"\x00\x00\x00\x18ftypmp42 truncated"
    (spool / f"{seg_id}.mp4").write_bytes(junk)
    abandoned = await pool.fetchval(
        """INSERT INTO video_segments (gate_id, started_at, storage_key, fps, width, height, recorder)
           VALUES ('g2', $1, 'video/g2/2025/01/06/gone.mp4', 5, 320, 240, $2) RETURNING id""",
        at(0), socket.gethostname())
    recorder = make_recorder()
    assert await recorder.recover() == 1
    row = await pool.fetchrow("SELECT * FROM video_segments WHERE id = $1", seg_id)
    assert row["status"] == "incomplete" and row["bytes"] == len(junk) and row["sha256"] == hashlib.sha256(junk).hexdigest()
    assert store.path("video/g1/2025/01/06/lost.mp4").exists()
    gone = await pool.fetchrow("SELECT * FROM video_segments WHERE id = $1", abandoned)
    assert gone["status"] == "incomplete" and gone["bytes"] is None and gone["ended_at"] == at(0)


async def test_segment_rows_are_evidence(pool, make_recorder, frames):
    import asyncpg
    import pytest

    recorder = make_recorder()
    seg, _ = await recorder.add_frame("g1", at(0), frames[0])
    await recorder.close_gate("g1")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute("UPDATE video_segments SET sha256 = repeat('0', 64) WHERE id = $1", seg)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute("DELETE FROM video_segments WHERE id = $1", seg)
    await pool.execute("UPDATE video_segments SET legal_hold = true, hold_reason = 'case' WHERE id = $1", seg)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute("UPDATE video_segments SET deleted_at = now() WHERE id = $1", seg)


async def test_a_burst_beyond_the_queue_is_left_out_but_time_stays_true(make_recorder, frames, pool):
    recorder = make_recorder(queue_frames=4)
    for i in range(20):  # no await in between that yields: the encoder cannot keep up
        seg, _ = await recorder.add_frame("g1", at(i * 0.2), frames[i % len(frames)])
    closed = await recorder.close_gate("g1")
    assert recorder.frames_left_out >= 10
    assert closed.frames == 20 and closed.ended_at == at(4.0)
