"""The project's own plate models through the reader (engines ``own`` and ``combined``): real weights, no mocks."""

import concurrent.futures
import json
import random
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import cv2
import pytest

from plate_reader import plates
from plate_reader.own_engine import KindClassifier, OwnRecognizer, weights_dir
from plate_reader.reader import ENGINES, PlateReader
from plate_reader.synth import place_in_frame, render_plate

ROOT = Path(__file__).resolve().parents[2]
_readers: dict[str, PlateReader] = {}


def _reader(engine: str) -> PlateReader:
    if engine not in _readers:
        _readers[engine] = PlateReader(engine=engine, threads=1)
    return _readers[engine]


@pytest.fixture(scope="module")
def own():
    return _reader("own")


@pytest.fixture(scope="module")
def combined():
    return _reader("combined")


def _frame(text: str, color: str, double: bool = False):
    return place_in_frame(render_plate(text, color, double), random.Random(zlib.crc32(text.encode())))


def test_models_ship_in_the_package_and_load():
    for name in ("plate_rec", "plate_kind", "plate_prov"):
        onnx, meta = weights_dir() / f"{name}.onnx", weights_dir() / f"{name}.json"
        assert onnx.is_file() and meta.is_file()
        assert onnx.stat().st_size <= 5 * 1024 * 1024  # issue 13: small (<= 5 MB)
        assert json.loads(meta.read_text(encoding="utf-8"))["name"].startswith("cleangate-plate-")
    rec = OwnRecognizer()
    # The alphabet covers every character the GA 36 templates allow (O only as the authority letter).
    assert set(plates.PROVINCES + plates.LETTERS + plates.DIGITS + "挂学警港澳领使") <= set(rec.chars)
    assert KindClassifier().labels == ["blue", "yellow", "yellow_double", "green", "yellow_green", "white", "black"]
    assert rec.province is not None and rec.province.labels == [*plates.PROVINCES, "other"]


def test_wheel_carries_the_weights_and_the_engine_loads_from_it(tmp_path):
    """Build the wheel, install it (without dependencies) into an empty folder and read a plate from there."""
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheel_dir), str(ROOT)], check=True, capture_output=True, timeout=600)
    wheel = next(wheel_dir.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("plate_rec.onnx", "plate_rec.json", "plate_kind.onnx", "plate_kind.json", "plate_prov.onnx",
              "plate_prov.json"):
        assert f"plate_reader/weights/{f}" in names
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=600)
    crop = tmp_path / "plate.png"
    cv2.imwrite(str(crop), cv2.resize(render_plate("晋L12345", "yellow", True), (176, 88)))
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); import plate_reader, cv2; "
            "from plate_reader.reader import PlateReader; r = PlateReader('own'); "
            "x = r.read(cv2.imread(sys.argv[2])); "
            "print(json.dumps({'file': plate_reader.__file__, 'plate': x.plate, 'models': r.models}))")
    out = subprocess.run([sys.executable, "-c", code, str(target), str(crop)], check=True, capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["file"].startswith(str(target))  # the installed copy, not the source tree
    assert got["plate"] == "晋L12345" and set(got["models"]) == {"plate_rec", "plate_kind", "plate_prov"}


def test_combined_engine_decodes_through_the_grammar(combined, own):
    rng = random.Random(5)
    for text, color, double in [("晋L12345", "yellow", True), ("晋L12345D", "yellow-green", False),
                                ("浙G70000", "blue", False), ("粤Z1234澳", "black", False)]:
        img = cv2.GaussianBlur(render_plate(text, color, double), (7, 7), 0)
        r = combined.read(place_in_frame(img, rng))
        assert r.plate is not None and plates.is_valid(r.plate)
        # Every character comes from the slot the read's template allows there.
        template = next(t for t in plates.TEMPLATES if t.kind == r.kind and plates._fits(r.plate, t))
        assert all(c in s for c, s in zip(r.plate, template.slots, strict=True))
        assert len(r.char_probs) == len(r.plate) and all(0.0 <= p <= 1.0 for p in r.char_probs)
    assert combined.models.keys() == {"plate_rec", "plate_kind", "plate_prov", "ppocr_rec"}


def test_the_province_classifier_names_the_province_and_joins_the_read(own):
    """The shipped province classifier on plates of the evaluation renderer (Noto font, which training never
    draws in), one per layout and province, and the reader with it and without it."""
    rec = own.recognizer
    rng = random.Random(13)
    cases = [(f"{p}{'L' if p != '晋' else 'K'}{rng.randrange(10000, 99999)}", color, double)
             for p, color, double in [("晋", "blue", False), ("冀", "yellow", False), ("豫", "yellow", True),
                                      ("陕", "blue", False), ("鲁", "yellow", True), ("京", "blue", False)]]
    crops = [cv2.resize(render_plate(t, c, d), (176, 88) if d else (220, 64)) for t, c, d in cases]
    from plate_reader.layout import stitch_double_row

    views = [stitch_double_row(c) if d else c for c, (_, _, d) in zip(crops, cases, strict=True)]
    probs, posteriors = rec.probs_and_provinces(views)
    assert len(probs) == len(posteriors) == len(cases)
    named = [rec.province.labels[int(q.argmax())] for q in posteriors]
    assert sum(n == t[0] for n, (t, _, _) in zip(named, cases, strict=True)) >= 5, named
    assert all(abs(float(q.sum()) - 1.0) < 1e-4 for q in posteriors)
    alone = PlateReader(engine="own", threads=1, province_expert=False)
    with_it = [own.read(c).plate for c in crops]
    without = [alone.read(c).plate for c in crops]
    right = sum(r == t for r, (t, _, _) in zip(with_it, cases, strict=True))
    assert right >= 5 and right >= sum(r == t for r, (t, _, _) in zip(without, cases, strict=True)) - 1, (with_it,
                                                                                                          without)


def test_combined_agrees_where_both_experts_agree(combined):
    crop = cv2.resize(render_plate("晋LB5678", "blue"), (220, 64))
    own_read = _reader("own").read(crop)
    ppocr_read = _reader("ppocr").read(crop)
    assert own_read.plate == ppocr_read.plate == "晋LB5678"
    r = combined.read(crop)
    assert r.plate == "晋LB5678"
    # Two agreeing experts are surer of each character than the own model alone.
    assert min(r.char_probs) >= min(own_read.char_probs) - 1e-3


def test_own_engine_is_thread_safe(own):
    frames = [_frame(t, c) for t, c in [("晋LA1234", "blue"), ("晋LD12345", "green"), ("晋L12345D", "yellow-green"),
                                        ("晋LC9012", "yellow")]]
    want = [own.read(f).plate for f in frames]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        got = list(ex.map(own.read, frames * 2))
    assert [g.plate for g in got] == want * 2


def test_engine_names():
    assert set(ENGINES) == {"own", "ppocr", "combined", "paddle"}
    assert PlateReader(engine="onnx").engine == "ppocr"  # the PP-OCRv4 engine's old name still works
    with pytest.raises(ValueError, match="own, ppocr, combined, paddle"):
        PlateReader(engine="nope")
