"""The own/combined engines' colour-trust and expert thresholds: the rules that pick them (pure), and a real
reader taking them from calibration.json when they were derived for its models, else the fallback constants."""

import json

import pytest

from plate_reader import reader as reader_mod
from plate_reader import thresholds
from plate_reader.calibration import MAPS_FILE, load_maps
from plate_reader.own_engine import KindGuess
from plate_reader.reader import PlateReader
from plate_reader.thresholds import (
    Row,
    choose_color_trust,
    choose_expert_below,
    choose_expert_crops,
    load_entries,
    save_entries,
)


def _rows(values, n, exact, color=None):
    return [Row(v, n, e, c) for v, e, c in zip(values, exact, color or [0] * len(values), strict=True)]


def test_expert_below_is_the_smallest_within_half_a_point_of_asking_always():
    values = (0.0, 0.5, 0.8, 0.9, 1.01)
    # On 1000 reads: asking always 900; 0.8 reads 896 (-0.4 points) on the first set, but on the second set 0.8
    # is 1 point short and only 0.9 is within 0.5 of always there.
    first = _rows(values, 1000, (850, 880, 896, 899, 900))
    second = _rows(values, 200, (170, 180, 188, 190, 190))
    assert choose_expert_below([first]) == 0.8
    assert choose_expert_below([first, second]) == 0.9
    assert choose_expert_below([first], tolerance=5.0) == 0.0
    # Never asking that beats asking always is within tolerance too: the smallest value wins.
    assert choose_expert_below([_rows(values, 100, (81, 71, 76, 76, 76))]) == 0.0
    with pytest.raises(ValueError):
        choose_expert_below([_rows((0.0, 0.9), 10, (5, 6))])  # no "always" candidate
    with pytest.raises(ValueError):
        choose_expert_below([first, _rows((0.0, 1.01), 10, (5, 6))])  # different candidates per set


def test_expert_crops_is_the_smallest_cap_within_half_a_point_of_no_cap():
    caps = (1, 2, 4, 0)
    # No cap reads 900 of 1000; a cap of 2 reads 896 (-0.4 points) on the first set, but 1 point short on the
    # second, where only 4 is within 0.5 of no cap.
    first = _rows(caps, 1000, (880, 896, 899, 900))
    second = _rows(caps, 200, (180, 188, 190, 190))
    assert choose_expert_crops([first]) == 2
    assert choose_expert_crops([first, second]) == 4
    assert choose_expert_crops([first], tolerance=5.0) == 1
    # Every cap loses more than the tolerance somewhere: no cap.
    assert choose_expert_crops([_rows(caps, 100, (90, 91, 92, 95))]) == 0
    with pytest.raises(ValueError):
        choose_expert_crops([_rows((1, 2), 10, (5, 6))])  # no "no cap" candidate
    with pytest.raises(ValueError):
        choose_expert_crops([first, _rows((1, 0), 10, (5, 6))])  # different candidates per set


def test_a_cap_bounds_the_crops_one_read_shows_pp_ocr_and_changes_no_read_it_does_not_reach():
    """Real scenes (plate_reader/synth.py frames), PP-OCRv4 asked about every crop (expert_below 1.01): with no
    cap some reads ask it about more than two crops; with a cap of two no read asks it about more, each read
    starts with its own two, and a read that needed no more than two is the uncapped read exactly."""
    from plate_reader.synth import synthetic_set

    frames = [s.image for s in synthetic_set(1, kinds=("ordinary_blue", "double_row_yellow", "new_energy_large",
                                                       "police"))]
    uncapped = PlateReader("combined", threads=1, expert_below=1.01, expert_crops=0)
    capped = PlateReader("combined", threads=1, expert_below=1.01, expert_crops=2)
    used = {}
    for name, reader in (("free", uncapped), ("cap", capped)):
        calls = []
        probs = reader.expert.probs
        reader.expert.probs = lambda images, _p=probs, _c=calls, **kw: (_c.append(len(images)), _p(images, **kw))[1]
        used[name] = []
        for frame in frames:
            before = len(calls)
            used[name].append((reader.read(frame), sum(calls[before:])))
    assert max(n for _, n in used["free"]) > 2
    assert all(n <= 2 for _, n in used["cap"]) and sum(n for _, n in used["cap"]) >= len(frames)
    for (free, n_free), (cap, _) in zip(used["free"], used["cap"], strict=True):
        if n_free <= 2:
            assert (cap.plate, cap.confidence, cap.color) == (free.plate, free.confidence, free.color)
    with pytest.raises(ValueError):
        PlateReader("combined", threads=1, expert_crops=-1)


def test_color_trust_takes_the_most_right_colours_then_exact_reads_then_the_higher_value():
    values = (0.0, 0.5, 0.7, 0.9, 1.01)
    ccpd = _rows(values, 100, (90,) * 5, (100, 100, 100, 99, 99))
    synth = _rows(values, 70, (50, 50, 51, 50, 50), (66, 69, 69, 70, 56))
    # Summed right colours: 166, 169, 169, 169, 155: a three-way tie, broken by exact reads (0.7: 141).
    assert choose_color_trust([ccpd, synth]) == 0.7
    # Equal colours and exact reads: the higher value.
    assert choose_color_trust([_rows(values, 10, (5,) * 5, (9, 9, 10, 10, 8))]) == 0.9
    with pytest.raises(ValueError):
        choose_color_trust([ccpd, _rows((0.0,), 1, (1,), (1,))])


@pytest.fixture
def entries_copy(tmp_path, monkeypatch):
    """calibration.json copied, and the readers pointed at the copy (the shipped file stays as it is)."""
    path = tmp_path / "calibration.json"
    path.write_text(MAPS_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(thresholds, "THRESHOLDS_FILE", path)
    return path


def test_a_real_reader_uses_the_stored_thresholds_and_a_changed_entry_changes_them(entries_copy):
    stored = load_entries()
    own, comb = PlateReader("own", threads=1), PlateReader("combined", threads=1)
    assert (own.color_trust, comb.color_trust) == (stored["own"]["color_trust"], stored["combined"]["color_trust"])
    assert comb.expert_below == stored["combined"]["expert_below"]
    info = comb.calibration["thresholds"]
    assert info["source"] == "calibration.json" and info["current"] and info["fitted_for"] == comb.fingerprint
    assert info["expert_below"] == comb.expert_below and info["expert_crops"] == comb.expert_crops
    assert comb.expert_crops == stored["combined"].get("expert_crops", 0)
    # An expert_below given to the constructor wins (the benchmarks sweep it); colour trust stays the stored one.
    assert PlateReader("combined", threads=1, expert_below=1.01).expert_below == 1.01

    changed = {e: dict(stored[e]) for e in ("own", "combined")}
    changed["own"]["color_trust"] = 0.123
    changed["combined"].update(color_trust=0.456, expert_below=0.789, expert_crops=3)
    save_entries(changed, entries_copy)
    assert load_maps(entries_copy) == load_maps()  # the maps are kept beside the entries
    own, comb = PlateReader("own", threads=1), PlateReader("combined", threads=1)
    assert (own.color_trust, comb.color_trust, comb.expert_below, comb.expert_crops) == (0.123, 0.456, 0.789, 3)
    # and the colour decision follows it: a classifier 30% sure is trusted at 0.123, not at 0.456.
    guess = KindGuess("yellow", 0.3, {label: 0.3 if label == "yellow" else 0.7 / 6 for label in own.kinds.labels})
    assert own._trust(guess) and not comb._trust(guess)


def test_entries_for_other_models_fall_back_to_the_constants_and_say_so(entries_copy):
    doc = json.loads(entries_copy.read_text(encoding="utf-8"))
    for entry in doc["thresholds"].values():
        entry["models"] = {**entry["models"], "plate_rec": "some-other-version"}
    entries_copy.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    comb = PlateReader("combined", threads=1)
    assert (comb.color_trust, comb.expert_below) == (reader_mod.COLOR_TRUST, reader_mod.EXPERT_BELOW)
    assert comb.expert_crops == thresholds.FALLBACK_EXPERT_CROPS == 0  # no cap: combined as before the cap
    info = comb.calibration["thresholds"]
    assert info["source"] == "fallback" and not info["current"]
    # No entry at all: the fallback too.
    del doc["thresholds"]
    entries_copy.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert PlateReader("own", threads=1).calibration["thresholds"]["source"] == "fallback"
    # The PP-OCRv4 engine has no kind classifier: no thresholds to report.
    assert "thresholds" not in PlateReader("ppocr", threads=1).calibration
