"""The retention job on a backdated ledger and video index: it removes exactly what the plan lists."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

from gate_service import jobs, keys
from gate_service.ledger import store as ledger
from gate_service.retention.apply import make_plan

AS_OF = date(2026, 3, 2)  # drops up to passages_202402; video that ended by 2025-08-30 16:00 UTC


async def backdate(app) -> dict:
    pool = app[keys.POOL]
    store = app[keys.MEDIA_STORE]
    for year, month in [(2023, 12), (2024, 1), (2024, 2), (2024, 3), (2024, 4)]:
        await pool.fetchval("SELECT ensure_passage_partition($1)", date(year, month, 1))

    # Gate g1's chain runs through months that go and months that stay (and back: an admin backfill).
    moments = [datetime(2023, 12, 20, tzinfo=timezone.utc), datetime(2024, 1, 10, tzinfo=timezone.utc),
               datetime(2024, 2, 29, 20, tzinfo=timezone.utc), datetime(2024, 3, 5, tzinfo=timezone.utc),
               datetime(2024, 1, 15, tzinfo=timezone.utc), datetime(2024, 4, 2, tzinfo=timezone.utc)]
    rows = []
    for i, at in enumerate(moments):
        snap = f"snapshots/g1/{at:%Y/%m/%d}/p{i}.jpg"
        await store.put(snap, b"jpeg" + bytes([i]))
        async with pool.acquire() as conn, conn.transaction():
            rows.append(await ledger.append(conn, {
                "at": at, "gate_id": "g1", "zone_id": "city", "direction": "in", "plate": f"晋LA123{i}",
                "source": "import", "registered": False, "decision": "allow", "reasons": [], "rules": [],
                "blacklisted": False, "clean": False, "snapshot_ref": snap,
            }))

    async def segment(ended: datetime, **extra) -> int:
        key = f"video/g1/{ended:%Y/%m/%d}/{ended:%H%M%S}-{ended.microsecond}.mp4"
        blob = await store.put(key, b"mp4" * 10)
        return await pool.fetchval(
            """INSERT INTO video_segments (gate_id, started_at, ended_at, storage_key, status, fps, width, height,
                                          frames, bytes, sha256, legal_hold, hold_reason, hold_case_ref)
               VALUES ('g1', $1, $2, $3, 'closed', 5, 320, 240, 3000, $4, $5, $6, $7, $8) RETURNING id""",
            ended - timedelta(minutes=10), ended, key, blob.bytes, blob.sha256, extra.get("hold", False),
            "案件" if extra.get("hold") else None, "case-1" if extra.get("hold") else None)

    edge = datetime(2025, 8, 30, 16, tzinfo=timezone.utc)  # 2026-03-02 00:00 Shanghai - 183 days
    ids = {
        "old": await segment(datetime(2025, 3, 1, tzinfo=timezone.utc)),
        "edge": await segment(edge),
        "young": await segment(edge + timedelta(seconds=1)),
        "held": await segment(datetime(2025, 1, 1, tzinfo=timezone.utc), hold=True),
    }
    ids["recording"] = await pool.fetchval(
        """INSERT INTO video_segments (gate_id, started_at, storage_key, fps, width, height, recorder)
           VALUES ('g1', $1, 'video/g1/stale.mp4', 5, 320, 240, 'elsewhere') RETURNING id""",
        datetime(2025, 1, 1, tzinfo=timezone.utc))
    return {"rows": rows, "segments": ids}


async def partitions(pool) -> set[str]:
    return {r["relname"] for r in await pool.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'passages'::regclass")}


async def test_retention_job_removes_exactly_what_was_planned(client, app):
    world = await backdate(app)
    pool, store = app[keys.POOL], app[keys.MEDIA_STORE]
    planned = await make_plan(pool, AS_OF, app[keys.SETTINGS])
    assert [p.name for p in planned.partitions] == ["passages_202312", "passages_202401", "passages_202402"]
    assert [p.rows for p in planned.partitions] == [1, 2, 1]
    seg = world["segments"]
    # The segment a stopped recorder left 'recording' long ago counts as ended when it started.
    assert [s.id for s in planned.segments] == [seg["recording"], seg["old"], seg["edge"]]
    assert [s.id for s in planned.held] == [seg["held"]]
    before = await partitions(pool)

    outcome = await jobs.run_now("retention", app, today=AS_OF)
    assert outcome.ran and outcome.ok, outcome.error
    report = outcome.result
    assert [p["name"] for p in report.partitions_dropped] == [p.name for p in planned.partitions]
    assert before - await partitions(pool) == {p.name for p in planned.partitions}
    assert await pool.fetchval("SELECT count(*) FROM passages") == 2

    # Video: the planned ones are gone (file and row marked), the held and the young are kept.
    rows = {r["id"]: r for r in await pool.fetch("SELECT id, storage_key, deleted_at, status FROM video_segments")}
    for name in ("old", "edge"):
        assert rows[seg[name]]["deleted_at"] is not None
        assert not await store.exists(rows[seg[name]]["storage_key"])
    for name in ("young", "held"):
        assert rows[seg[name]]["deleted_at"] is None
        assert await store.exists(rows[seg[name]]["storage_key"])
    # A segment a stopped recorder left 'recording' long ago is ended, and being old, expires with the rest
    # (it never had a file here).
    assert rows[seg["recording"]]["status"] == "incomplete" and rows[seg["recording"]]["deleted_at"] is not None
    assert report.segments_deleted == 3 and report.files_missing == 1
    assert report.held_kept == 1 and report.abandoned_ended == 1

    # Snapshots of dropped rows are gone, those of the rows kept are not.
    kept = {r["snapshot_ref"] for r in await pool.fetch("SELECT snapshot_ref FROM passages")}
    for row in world["rows"]:
        assert await store.exists(row["snapshot_ref"]) == (row["snapshot_ref"] in kept)
    assert report.media_deleted == 4

    # What went is recorded, with the chain runs that let a verifier bridge the holes.
    dropped = await pool.fetch("SELECT name, rows, as_of FROM ledger_dropped_partitions ORDER BY name")
    assert [(r["name"], r["rows"]) for r in dropped] == [("passages_202312", 1), ("passages_202401", 2),
                                                         ("passages_202402", 1)]
    runs = await pool.fetch("SELECT * FROM ledger_dropped_runs ORDER BY first_seq")
    assert [(r["first_seq"], r["last_seq"]) for r in runs] == [(1, 1), (2, 2), (3, 3), (5, 5)]
    by_seq = {r["gate_seq"]: r for r in world["rows"]}
    for run in runs:
        assert bytes(run["first_prev_hash"]) == by_seq[run["first_seq"]]["prev_hash"]
        assert bytes(run["last_hash"]) == by_seq[run["last_seq"]]["hash"]
    remaining = {r["gate_seq"]: bytes(r["prev_hash"]) for r in await pool.fetch(
        "SELECT gate_seq, prev_hash FROM passages")}
    assert remaining[4] == bytes(runs[2]["last_hash"]) and remaining[6] == bytes(runs[3]["last_hash"])
    # ... and the verifier does bridge them: the chain is intact after retention,
    from gate_service.ledger import store as ledger

    async with pool.acquire() as conn:
        checked, breaks = await ledger.verify(conn)
        assert (checked, breaks) == (2, [])
        # while a row deleted by hand, with no run recorded for it, still breaks it.
        await conn.execute("ALTER TABLE passages DISABLE TRIGGER passages_append_only")
        await conn.execute("DELETE FROM passages WHERE gate_seq = 4")
        _, breaks = await ledger.verify(conn)
        assert breaks and "missing" in breaks[0].problem
        await conn.execute("ALTER TABLE passages ENABLE TRIGGER passages_append_only")

    # Idempotent: a second run (a restart, another replica later) finds nothing more.
    again = await jobs.run_now("retention", app, today=AS_OF)
    assert again.ok and not again.result.partitions_dropped and again.result.segments_deleted == 0
    status = await pool.fetch("SELECT status, detail FROM job_runs WHERE job = 'retention' ORDER BY id")
    assert [r["status"] for r in status] == ["ok", "ok"]
    assert status[0]["detail"]["result"]["segments_deleted"] == 3


async def test_a_hold_placed_after_planning_still_wins(client, app):
    from gate_service.retention.apply import apply_plan

    world = await backdate(app)
    pool = app[keys.POOL]
    planned = await make_plan(pool, AS_OF, app[keys.SETTINGS])
    old = world["segments"]["old"]
    await pool.execute("UPDATE video_segments SET legal_hold = true, hold_reason = 'late case' WHERE id = $1", old)
    report = await apply_plan(pool, app[keys.MEDIA_STORE], planned)
    assert report.segments_deleted == 1
    assert await pool.fetchval("SELECT deleted_at FROM video_segments WHERE id = $1", old) is None


def test_cli_retention_plan_prints_what_would_go(settings, database_url, tmp_path):
    from gate_service.app import create_app

    async def setup() -> None:
        from aiohttp.test_utils import TestServer

        app = create_app(settings)
        server = TestServer(app)  # starts the app's services (database, store) as the service would
        await server.start_server()
        try:
            await backdate(app)
        finally:
            await server.close()

    asyncio.run(setup())
    env = {**os.environ, "DATABASE_URL": database_url, "CLEANGATE_DATA_DIR": str(settings.data_dir)}
    out = subprocess.run([sys.executable, "-m", "gate_service", "retention", "plan", "--as-of", "2026-03-02"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ledger partitions to drop: 3" in out.stdout
    assert "passages_202402" in out.stdout and "passages_202403" not in out.stdout
    assert "video segments to delete: 3" in out.stdout
    assert "kept under legal hold although old enough: 1" in out.stdout
    out = subprocess.run([sys.executable, "-m", "gate_service", "retention", "plan", "--as-of", "2026-03-02",
                          "--json"], env=env, capture_output=True, text=True, timeout=120)
    data = json.loads(out.stdout)
    assert data["video_retention_days"] == 183 and data["ledger_retention_months"] == 24
    assert [p["rows"] for p in data["partitions"]] == [1, 2, 1]
    # Planning deleted nothing.
    env_low = {**env, "CLEANGATE_VIDEO_RETENTION_DAYS": "10"}
    out = subprocess.run([sys.executable, "-m", "gate_service", "retention", "plan", "--as-of", "2026-03-02",
                          "--json"], env=env_low, capture_output=True, text=True, timeout=120)
    assert json.loads(out.stdout)["video_retention_days"] == 183
    bad = subprocess.run([sys.executable, "-m", "gate_service", "retention", "plan", "--as-of", "2026-13-02"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "YYYY-MM-DD" in bad.stderr
