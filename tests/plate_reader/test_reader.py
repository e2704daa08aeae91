"""The real model on real and synthetic frames (no mocks)."""

import concurrent.futures
import random
import zlib

import cv2
import numpy as np
import pytest

from plate_reader import plates
from plate_reader.color import classify_color
from plate_reader.dataset import load, split
from plate_reader.reader import PlateRead, PlateReader, consensus
from plate_reader.synth import place_in_frame, render_plate, synthetic_set

# A handful of dev-half photos (the report half is for the benchmark only).
REAL = ["shared_0001.jpg", "shared_0005.jpg", "shared_0150.png", "shared_0115.jpg", "shared_0032.jpg"]


def test_split_is_fixed_and_half(easypr_dir):
    samples = load(easypr_dir)
    halves = split(samples)
    assert abs(len(halves["dev"]) - len(halves["report"])) <= 1
    assert not {s.path.name for s in halves["dev"]} & {s.path.name for s in halves["report"]}
    assert split(list(reversed(samples)))["dev"] == list(reversed(halves["dev"]))


def test_reads_real_photos(reader, easypr_dir):
    dev = {s.path.name: s for s in load(easypr_dir, half="dev")}
    names = [n for n in REAL if n in dev]
    assert len(names) >= 4
    right = 0
    for name in names:
        s = dev[name]
        r = reader.read(s.path.read_bytes())
        assert r.plate is None or plates.is_valid(r.plate)
        right += r.plate == s.plate
        if r.plate == s.plate:
            assert 0.0 <= r.confidence <= 1.0 and r.box is not None and r.crop is not None
            assert len(r.char_probs) == len(r.plate)
    assert right >= len(names) - 1


@pytest.mark.parametrize(
    "text, color, double",
    [
        ("晋L12345", "yellow", True),      # double-row rear truck plate
        ("晋LA5381", "yellow", True),
        ("晋L1234挂", "yellow", True),     # double-row trailer
        ("晋LD12345", "green", False),     # 8-char small new-energy
        ("晋LFA1234", "green", False),
        ("晋L12345D", "yellow-green", False),
        ("晋LA1234", "blue", False),
        ("晋L1234警", "white", False),
        ("粤Z1234港", "black", False),
    ],
)
def test_reads_synthetic_kinds(reader, text, color, double):
    rng = random.Random(zlib.crc32(text.encode()))
    frame = place_in_frame(render_plate(text, color, double), rng)
    r = reader.read(frame)
    assert r.plate == text
    assert r.color == color


def test_synthetic_set_mostly_right(reader):
    ss = synthetic_set(per_kind=1, seed=7)
    right = sum(reader.read(s.image).plate == s.plate for s in ss)
    assert right >= len(ss) - 1


@pytest.mark.parametrize("color", ["blue", "yellow", "green", "yellow-green", "white", "black"])
def test_colour_on_synthetic_crops(color):
    text = {"green": "晋LD12345", "yellow-green": "晋L12345D", "black": "粤Z1234港"}.get(color, "晋LA1234")
    crop = render_plate(text, color)
    assert classify_color(cv2.resize(crop, (176, 56))) == color


def test_colour_unknown_on_empty():
    assert classify_color(None) == "unknown"
    assert classify_color(np.zeros((0, 0, 3), np.uint8)) == "unknown"


def test_nothing_found_is_none_not_error(reader):
    blank = np.full((480, 640, 3), 127, np.uint8)
    r = reader.read(blank)
    assert r.plate is None and r.box is None and r.confidence == 0.0
    noise = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    assert reader.read(noise).plate is None or plates.is_valid(reader.read(noise).plate)
    tiny = np.zeros((3, 3, 3), np.uint8)
    assert reader.read(tiny).plate is None


def test_thread_safe_reuse(reader):
    frames = [place_in_frame(render_plate(t, "blue"), random.Random(i)) for i, t in
              enumerate(["晋LA1234", "晋LB5678", "晋LC9012", "晋LE3456"])]
    want = [reader.read(f).plate for f in frames]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        got = list(ex.map(reader.read, frames * 2))
    assert [g.plate for g in got] == want * 2


def test_read_crop(reader):
    r = reader.read_crop(render_plate("晋LD12345", "green"))
    assert r.plate == "晋LD12345" and r.color == "green"


def test_unknown_engine():
    with pytest.raises(ValueError):
        PlateReader(engine="nope")


def _pr(plate, conf, probs=None, color="blue"):
    return PlateRead(plate=plate, color=color, confidence=conf, box=(0, 0, 10, 3),
                     char_probs=probs or [conf] * len(plate or ""))


def test_consensus_votes_per_character():
    reads = [
        _pr("晋LA1234", 0.9),
        _pr("皖LA1234", 0.5, [0.3, .9, .9, .9, .9, .9, .9]),
        _pr("晋LA1Z34", 0.6, [.9, .9, .9, .9, 0.2, .9, .9]),
        _pr("晋LA1234", 0.8),
        _pr(None, 0.0),
    ]
    c = consensus(reads)
    assert c.plate == "晋LA1234"
    assert 0.0 <= c.confidence <= 1.0
    # Agreement raises confidence above any single read's; a lone read keeps its own.
    assert c.confidence >= 0.9
    assert consensus([_pr("晋LA1234", 0.7)]).confidence == pytest.approx(0.7, abs=1e-3)


def test_consensus_length_majority_and_empty():
    assert consensus([]) is None
    assert consensus([_pr(None, 0.0)]) is None
    reads = [_pr("晋LD12345", 0.9, color="green"), _pr("晋LD1234", 0.4, color="green"),
             _pr("晋LD12345", 0.8, color="unknown")]
    c = consensus(reads)
    assert c.plate == "晋LD12345" and c.color == "green"


def test_consensus_disagreement_lowers_confidence():
    c = consensus([_pr("晋LA1234", 0.9), _pr("晋LA1284", 0.9)])
    assert c.confidence < 0.9
    assert plates.is_valid(c.plate)


def test_constrained_decode_gives_per_position_mass(reader):
    crop = render_plate("晋LA1234", "blue")
    p = reader.recognizer.probs([cv2.resize(crop, (176, 56))], stretch=2.0)[0]
    r = reader.recognizer.constrained(p, next(t for t in plates.TEMPLATES if t.kind == "ordinary").slots)
    assert r is not None and r.text == "晋LA1234"
    assert len(r.slot_probs) == 7
    for (idx, mass), ch in zip(r.slot_probs, r.text, strict=True):
        assert abs(float(mass.sum()) - 1.0) < 1e-4
        assert reader.recognizer.chars[int(idx[int(mass.argmax())])] == ch


def test_ensemble_reads_unsure_frames(reader):
    # Blurred, small plates give reads below the ensemble threshold: the vote must still return a valid plate.
    plain = PlateReader(threads=1, ensemble=False)
    rng = random.Random(3)
    for text in ("浙G70000", "粤BE609T"):
        img = cv2.GaussianBlur(render_plate(text, "blue"), (5, 5), 0)
        frame = place_in_frame(img, rng)
        r, r0 = reader.read(frame), plain.read(frame)
        assert r.plate is None or plates.is_valid(r.plate)
        assert 0.0 <= r.confidence <= 1.0
        assert r0.plate is None or r.plate is not None


def test_local_province_prior_is_optional_and_validated(reader):
    with pytest.raises(ValueError):
        PlateReader(threads=1, local_provinces="X")
    assert reader.recognizer._local == {}  # the default reader has no province prior at all
    local = PlateReader(threads=1, local_provinces="晋").recognizer
    # A CTC output that hesitates between 浙 (0.5) and 晋 (0.4) for the first character, then reads G70000.
    chars = local.chars
    p = np.full((16, len(chars)), 1e-6, dtype=np.float32)
    p[:, 0] = 0.9
    p[1, chars.index("浙")], p[1, chars.index("晋")], p[1, 0] = 0.5, 0.4, 0.1
    for t, ch in zip(range(3, 15, 2), "G70000", strict=True):
        p[t, chars.index(ch)], p[t, 0] = 0.99, 0.01
    slots = next(t for t in plates.TEMPLATES if t.kind == "ordinary").slots
    assert reader.recognizer.constrained(p, slots).text == "浙G70000"
    assert local.constrained(p, slots).text == "晋G70000"


def test_quick_read_skips_text_detection_and_still_finds_the_plate(easypr_dir):
    # A reader of its own: the shared one may already have its detector loaded by another test.
    reader = PlateReader(threads=1)
    dev = {s.path.name: s for s in load(easypr_dir, half="dev")}
    s = dev["shared_0001.jpg"]
    quick = reader.read(s.path.read_bytes(), quick=True)
    assert quick.plate == s.plate and quick.box is not None and 0.0 < quick.confidence <= 1.0
    assert reader._detector is None  # the costly PP-OCR text detection never ran
    blank = reader.read(np.full((240, 320, 3), 120, np.uint8), quick=True)
    assert blank.plate is None and blank.confidence == 0.0 and reader._detector is None


def test_probability_is_the_calibrated_chance_of_an_exact_read(reader, easypr_dir):
    from plate_reader.calibration import REFERENCE, load_maps

    # The map itself is tested in test_calibration.py; here the reader states it on its reads.
    ref = load_maps()[REFERENCE]
    s = next(s for s in load(easypr_dir, half="dev") if s.path.name == "shared_0001.jpg")
    r = reader.read(s.path.read_bytes())
    assert r.plate == s.plate and r.probability == round(ref.probability(r.confidence), 4)
    assert reader.read(np.full((120, 160, 3), 128, np.uint8)).probability is None


def test_constrained_decode_keeps_ctc_rule_for_repeated_characters(reader):
    # CTC writes "66" only with a blank between the two 6s: one unbroken run of 6s is a single 6. A crop cut short
    # (川A762Z, the last character outside it) must not come out as 川AA762Z or 川A7662Z with every character sure
    # of itself: six characters' runs cannot make a seven-character plate.
    rec = reader.recognizer
    chars = rec.chars
    slots = next(t for t in plates.TEMPLATES if t.kind == "ordinary").slots

    def ctc(runs: list[tuple[str, int]], T: int = 24) -> np.ndarray:
        p = np.full((T, len(chars)), 1e-6, dtype=np.float32)
        p[:, 0] = 0.99
        t = 1
        for ch, n in runs:
            for _ in range(n):
                p[t, chars.index(ch)], p[t, 0] = 0.99, 1e-6
                t += 1
            t += 1  # a blank after each character
        return p

    short = ctc([("川", 2), ("A", 2), ("7", 2), ("6", 3), ("2", 2), ("Z", 2)])
    r = rec.constrained(short, slots)
    assert r is None or min(r.char_probs) < 0.5, (r.text, r.char_probs)
    # Two 6s with a blank between them are two characters.
    double = ctc([("川", 2), ("A", 2), ("7", 2), ("6", 2), ("6", 2), ("2", 2), ("Z", 2)])
    r = rec.constrained(double, slots)
    assert r is not None and r.text == "川A7662Z" and min(r.char_probs) > 0.9
