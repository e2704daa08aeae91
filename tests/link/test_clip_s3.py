"""A platform whose media store is a bucket (a real SeaweedFS S3 gateway): a site's segment uploaded in chunks
lands in the bucket under the platform's key, sha256-checked, and is served back from there."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from gate_service import keys as app_keys
from gate_service.config import Settings
from gate_service.video.s3store import S3Store
from tests.link.test_clip_upload import _linked, _request, _segment
from tests.video.conftest import s3_env, seaweed  # noqa: F401 - the real SeaweedFS, shared with the video tests


@pytest.fixture
def settings(database_url, tmp_path, s3_env):  # noqa: F811
    return Settings(database_url=database_url, data_dir=tmp_path / "data", run_scheduler=False, pool_max=5,
                    media_url=f"s3://cleangate-test/link-{uuid.uuid4().hex[:10]}")


async def test_uploaded_segment_is_stored_in_the_bucket(client, app, admin, token, tmp_path):
    assert isinstance(app[app_keys.MEDIA_STORE], S3Store)
    ecology = await token("ecology")
    _, adapter = await _linked(client, app, admin, tmp_path)
    try:
        _, req = await _request(client, ecology)
        data = os.urandom(9 * 1024 * 1024 + 17)  # past the store's multipart threshold
        await adapter.send_records({"video_segments": [_segment(51, data)]})
        offset = 0
        while offset < len(data):
            answer = await adapter.put_video_chunk(51, offset, data[offset:offset + 4 * 1024 * 1024], req["id"])
            offset = answer["received"]
        assert answer["stored"] is True
        await adapter.report_video(req["id"], {"segments": [{"segment_id": 51, "state": "stored"}]})
        key = await app[app_keys.POOL].fetchval("SELECT storage_key FROM link_video_index WHERE segment_id = 51")
        store: S3Store = app[app_keys.MEDIA_STORE]
        assert await store.size(key) == len(data)  # in the bucket, not only on the platform's disk
        part = tmp_path / "data" / "link" / "incoming"
        assert not any(p.is_file() for p in part.rglob("*"))  # the staging file went into the store
        resp = await client.get(f"/api/v1/video-requests/{req['id']}/segments/51/video", headers=ecology)
        assert resp.status == 200 and hashlib.sha256(await resp.read()).hexdigest() == hashlib.sha256(data).hexdigest()
    finally:
        await adapter.close()
