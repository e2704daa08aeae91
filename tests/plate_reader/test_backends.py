"""The same reading tests for the engines: ``ppocr`` (PP-OCRv4; its old name ``onnx``), ``combined`` (the project's
models with PP-OCRv4 as second expert) and ``paddle`` (PaddleOCR 3.x, the [paddle] extra).

The paddle ones skip, with the reason, where ``paddleocr`` is not importable (the service's own venv never has it:
paddlex brings opencv-contrib-python, which clobbers opencv-python's cv2/). ``scripts/test-paddle`` builds a
separate venv with ``.[paddle,dev]`` and runs this suite there.
"""

import importlib.util
import random
import zlib

import numpy as np
import pytest

from plate_reader import plates
from plate_reader.dataset import load
from plate_reader.reader import PlateRead, PlateReader
from plate_reader.synth import place_in_frame, render_plate

HAVE_PADDLE = importlib.util.find_spec("paddleocr") is not None
needs_paddle = pytest.mark.skipif(not HAVE_PADDLE, reason="paddleocr is not installed (pip install '.[paddle]' "
                                                          "in a separate venv: scripts/test-paddle)")
ENGINES = ["onnx", "combined", pytest.param("paddle", marks=needs_paddle)]
REAL = ["shared_0001.jpg", "shared_0005.jpg", "shared_0150.png", "shared_0115.jpg", "shared_0032.jpg"]

_readers: dict[str, PlateReader] = {}


@pytest.fixture(params=ENGINES)
def engine_reader(request):
    engine = request.param
    if engine not in _readers:
        _readers[engine] = PlateReader(engine=engine, threads=1)
    return _readers[engine]


def _frame(text: str, color: str, double: bool = False) -> np.ndarray:
    return place_in_frame(render_plate(text, color, double), random.Random(zlib.crc32(text.encode())))


def test_real_photos(engine_reader, easypr_dir):
    dev = {s.path.name: s for s in load(easypr_dir, half="dev")}
    names = [n for n in REAL if n in dev]
    right = 0
    for name in names:
        s = dev[name]
        r = engine_reader.read(s.path.read_bytes())
        assert isinstance(r, PlateRead)
        assert r.plate is None or plates.is_valid(r.plate)
        if r.plate == s.plate:
            right += 1
            assert 0.0 < r.confidence <= 1.0 and r.box is not None and r.crop is not None
            assert r.kind == plates.parse(r.plate).kind and len(r.char_probs) == len(r.plate)
    assert right >= len(names) - 1


@pytest.mark.parametrize("text, color, double", [
    ("晋LA1234", "blue", False),
    ("晋LD12345", "green", False),
    ("晋L12345", "yellow", True),   # double-row rear truck plate
])
def test_synthetic_plates(engine_reader, text, color, double):
    r = engine_reader.read(_frame(text, color, double))
    assert r.plate == text
    assert r.color == color


def test_read_crop(engine_reader):
    r = engine_reader.read_crop(render_plate("晋LB5678", "blue"))
    assert r.plate == "晋LB5678" and r.color == "blue"


def test_nothing_found(engine_reader):
    r = engine_reader.read(np.full((480, 640, 3), 127, np.uint8))
    assert r.plate is None and r.box is None and r.confidence == 0.0


def test_engines_agree_on_interface(engine_reader):
    r = engine_reader.read(_frame("晋LC9012", "blue"))
    assert set(vars(r)) == {"plate", "color", "confidence", "box", "crop", "char_probs", "kind", "probability"}
    # Every engine's scores but paddle's are calibrated to a probability of an exact read.
    assert (r.probability is None) == (engine_reader.engine == "paddle")


@pytest.mark.skipif(HAVE_PADDLE, reason="paddleocr is installed here")
def test_paddle_engine_says_how_to_install():
    from plate_reader.paddle_backend import PaddleUnavailable

    with pytest.raises(PaddleUnavailable, match=r"\[paddle\]"):
        PlateReader(engine="paddle")


@needs_paddle
def test_cv2_and_both_engines_after_paddle_install(tmp_path):
    """paddlex installs opencv-contrib-python into the same cv2/ as opencv-python: both must still work."""
    import cv2

    img = _frame("晋LE3456", "blue")
    ok, buf = cv2.imencode(".png", img)
    assert ok and cv2.imdecode(buf, cv2.IMREAD_COLOR).shape == img.shape
    assert cv2.cvtColor(img, cv2.COLOR_BGR2HSV).shape == img.shape
    import paddleocr  # noqa: F401
    import rapidocr_onnxruntime  # noqa: F401

    from plate_reader.paddle_backend import build_model_dirs

    det, rec = build_model_dirs(tmp_path)
    for d in (det, rec):
        assert (d / "inference.onnx").is_file() and (d / "inference.yml").is_file()
    assert build_model_dirs(tmp_path) == (det, rec)  # built once, reused
    got = {e: PlateReader(engine=e).read(img).plate for e in ("onnx", "paddle")}
    assert got == {"onnx": "晋LE3456", "paddle": "晋LE3456"}
