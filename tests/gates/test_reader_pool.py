"""The gates' reader pool with the real models: frames of different gates are read side by side."""

import asyncio
import threading
import time

import cv2
import numpy as np
import pytest

from gate_service.gates.ingest import ReaderPool
from tests.conftest import EASYPR

PHOTO = EASYPR / "shared_0001.jpg"  # 京A88731, dev half
pytestmark = pytest.mark.skipif(not PHOTO.exists(), reason=f"EasyPR photos not found at {EASYPR}")


def jpeg(quality: int) -> bytes:
    return cv2.imencode(".jpg", cv2.imread(str(PHOTO)), [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def plateless() -> bytes:
    # Moving, but no plate: the reader's costly text-detection fallback runs on it.
    scene = np.full((480, 640, 3), 120, np.uint8)
    cv2.circle(scene, (200, 240), 60, (40, 40, 40), -1)
    return cv2.imencode(".jpg", scene)[1].tobytes()


@pytest.fixture
async def pool():
    pool = ReaderPool(2, engine="own")
    yield pool
    pool.close()


async def test_each_reader_thread_has_models_of_its_own(pool):
    """The PP-OCRv4 recogniser and the text detector serialise ``session.run`` by a lock: one reader shared by the
    worker threads left one core idle whenever two gates needed it at once."""
    readers = await pool.readers()
    assert len(readers) == pool.workers == 2
    assert readers[0] is not readers[1]
    # Each loads its text detector up front, so no gate's first fallback waits on a model load.
    assert readers[0].detector is not readers[1].detector
    assert readers[0].detector.session is not readers[1].detector.session
    assert await pool.reader() is readers[0]  # the video audit reads with one of them


async def test_frames_of_two_gates_are_read_at_once_by_different_readers(pool):
    readers = await pool.readers()
    calls: list[tuple[int, int, float, float]] = []
    busy: set[int] = set()
    shared: list[int] = []
    for reader in readers:
        real_read = reader.read

        def recording_read(image, *, _reader=reader, _real=real_read, **kwargs):
            if id(_reader) in busy:
                shared.append(id(_reader))  # two threads inside one reader at once
            busy.add(id(_reader))
            start = time.perf_counter()
            try:
                return _real(image, **kwargs)  # the real models read every frame
            finally:
                busy.discard(id(_reader))
                calls.append((id(_reader), threading.get_ident(), start, time.perf_counter()))

        reader.read = recording_read
    results = await asyncio.gather(*[pool.read(data) for data in
                                     [plateless(), plateless(), jpeg(90), jpeg(89)]])
    assert [r.plate for _, _, r in results[2:]] == ["京A88731", "京A88731"]
    assert results[0][2].plate is None and results[1][2].plate is None
    assert len(calls) == 4 and not shared
    assert {c[0] for c in calls} == {id(r) for r in readers}
    assert len({c[1] for c in calls}) == 2
    first, second = sorted(calls, key=lambda c: c[2])[:2]
    assert second[2] < first[3]  # the second read started before the first ended
    assert pool.inflight == 0
