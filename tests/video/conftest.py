"""Real frames for the recorder: EasyPR photos decoded and resized to one size."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gate_service.db.connect import create_pool
from gate_service.video.recorder import VideoRecorder
from gate_service.video.storage import LocalStore

EASYPR = Path(__file__).resolve().parents[3] / "shared" / "data" / "plates" / "easypr"
SIZE = (320, 240)


@pytest.fixture(scope="session")
def frames() -> list[np.ndarray]:
    paths = sorted(EASYPR.glob("*.jpg"))[:12]
    assert paths, f"no EasyPR photos under {EASYPR}"
    images = []
    for path in paths:
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
        images.append(cv2.resize(image, SIZE))
    return images


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
