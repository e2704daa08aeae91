"""The confidence maps: one per engine, stored as data with the model versions and the photos they were fitted
on (never EasyPR), and one confidence scale for every engine (real models, real crops)."""

import numpy as np
import pytest

from plate_reader.calibration import (
    MAPS_FILE,
    REFERENCE,
    ConfidenceMap,
    calibrate,
    fit_knots,
    invert,
    load_maps,
    save_map,
    stale,
)
from plate_reader.reader import PlateReader

FITTED = ("ppocr", "own", "combined")
_readers: dict[tuple[str, bool], PlateReader] = {}


def _reader(engine: str, calibrated: bool = True) -> PlateReader:
    if (engine, calibrated) not in _readers:
        _readers[engine, calibrated] = PlateReader(engine, threads=1, calibrated=calibrated)
    return _readers[engine, calibrated]


def test_fit_recovers_a_known_relation_and_refuses_bad_input():
    rng = np.random.default_rng(7)
    raw = rng.uniform(0, 1, 4000)
    knots = fit_knots(raw.tolist(), (rng.uniform(0, 1, 4000) < raw**2).tolist(), min_block=100)
    for x in (0.2, 0.5, 0.8):
        assert abs(calibrate(x, knots) - x**2) < 0.08
    ys = [calibrate(x, knots) for x in np.linspace(0, 1, 201)]
    assert all(b >= a for a, b in zip(ys, ys[1:], strict=False)) and ys[0] == 0.0 and ys[-1] < 1.0
    with pytest.raises(ValueError):
        fit_knots([0.5], [True, False])


def test_inverse_maps_back_even_across_flat_stretches():
    knots = ((0.0, 0.0), (0.2, 0.4), (0.6, 0.4), (0.9, 0.9), (1.0, 0.995))
    for p in (0.1, 0.4, 0.65, 0.9, 0.99):
        assert abs(calibrate(invert(p, knots), knots) - p) < 1e-4
    assert invert(1.0, knots) == 1.0 and invert(0.0, knots) == 0.0


def test_every_engine_has_a_map_fitted_on_ccpd_train_for_the_shipped_models():
    maps = load_maps()
    assert set(FITTED) <= set(maps)
    for engine in FITTED:
        m = maps[engine]
        xs, ys = zip(*m.knots, strict=True)
        assert list(xs) == sorted(xs) and list(ys) == sorted(ys) and ys[0] == 0.0 and ys[-1] < 1.0
        # Provenance: the photos we may tune on (never the EasyPR evaluation photos) and the command that fits it.
        assert "CCPD train" in m.fitted["data"] and "easypr" not in m.fitted["data"].lower()
        assert m.fitted["command"].startswith(f"python -m benchmarks.calibrate_confidence --engine {engine}")
        assert m.fitted["reads"] >= 1000 and 0 < m.fitted["exact"] < m.fitted["reads"]
        # Fitted for the models this checkout ships: new weights must come with refitted maps.
        reader = _reader(engine)
        assert not stale(m, reader.fingerprint), (engine, m.models, reader.fingerprint)
        assert all(info["current"] for info in reader.calibration.values())


def test_thresholds_are_derived_on_tunable_data_for_the_shipped_models_and_maps():
    """colour_trust / expert_below (plate_reader/thresholds.py) are data like the maps: derived for these very
    weights (and, for expert_below's scale, these maps) by benchmarks/derive_thresholds.py, never on EasyPR."""
    from benchmarks.derive_thresholds import maps_digest
    from plate_reader.thresholds import load_entries

    entries = load_entries()
    for engine in ("own", "combined"):
        entry = entries[engine]
        derived = entry["derived"]
        assert "CCPD train" in derived["data"] and "training/render.py" in derived["data"]
        assert "easypr" not in derived["data"].lower() and "synth_hard" not in derived["data"]
        assert derived["command"].startswith("python -m benchmarks.derive_thresholds")
        assert derived["maps"] == maps_digest(), "the maps were refitted: re-derive the thresholds"
        reader = _reader(engine)
        assert entry["models"] == reader.fingerprint, (engine, entry["models"], reader.fingerprint)
        assert reader.calibration["thresholds"]["current"]
    assert 0.0 <= entries["combined"]["expert_below"] <= 1.01
    # The PP-OCRv4 cap: measured with the others (its table on record); a reader caps only when it was applied.
    comb, derived = entries["combined"], entries["combined"]["derived"]
    assert {"ccpd", "synthetic", "loose", "loose_fonts"} <= set(derived["cap_table"]) and derived["cap_choice"] >= 0
    assert _reader("combined").expert_crops == (comb["expert_crops"] if derived["cap_applied"] else 0)


def test_a_map_fitted_for_another_set_of_models_is_reported_stale(tmp_path):
    """The shipped maps are fitted for the recogniser, the kind classifier and the province classifier: a folder
    without the province classifier reads differently, and ``calibration`` says its maps do not fit it."""
    import shutil

    from plate_reader.own_engine import weights_dir

    for name in ("plate_rec", "plate_kind"):
        for ext in ("onnx", "json"):
            shutil.copy(weights_dir() / f"{name}.{ext}", tmp_path / f"{name}.{ext}")
    for engine in ("own", "combined"):
        reader = PlateReader(engine=engine, threads=1, weights=tmp_path)
        assert "plate_prov" not in reader.models
        assert not any(info["current"] for path, info in reader.calibration.items() if path != "thresholds")
        assert not reader.calibration["thresholds"]["current"]


def test_save_map_replaces_one_engine_and_keeps_the_others(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(MAPS_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    new = ConfidenceMap("own", ((0.0, 0.0), (0.5, 0.7), (1.0, 0.995)), {"plate_rec": "x", "plate_kind": "y"},
                        {"data": "CCPD train (test)"})
    save_map(new, path)
    maps = load_maps(path)
    assert maps["own"] == new and maps["ppocr"] == load_maps()["ppocr"]


# combined asks PP-OCRv4 only about crops its own models read below expert_below: 1.01 always (a combined read,
# on the combined map), 0 never (the own models' read, on the own map).
@pytest.mark.parametrize(("engine", "expert_below", "fitted"),
                         [("own", 0.9, "own"), ("combined", 1.01, "combined"), ("combined", 0.0, "own")])
def test_confidence_is_on_one_scale_whichever_engine_reads(engine, expert_below, fitted, ccpd_crops):
    """Real held-out CCPD crops: an engine's confidence is its raw score carried through its own map to a
    probability and back through PP-OCRv4's, so the stated probability is the engine's own fit."""
    maps = load_maps()
    ref, used = maps[REFERENCE], maps[fitted]
    raw_reader = PlateReader(engine, threads=1, calibrated=False, expert_below=expert_below)
    reader = PlateReader(engine, threads=1, expert_below=expert_below)
    for crop, plate in ccpd_crops:
        raw, read = raw_reader.read_crop(crop), reader.read_crop(crop)  # one decode: no threshold decides the path
        assert read.plate == raw.plate == plate
        assert read.probability == pytest.approx(used.probability(raw.confidence), abs=2e-3)
        assert read.confidence == pytest.approx(invert(used.probability(raw.confidence), ref.knots), abs=2e-3)
        assert raw.probability is None  # no map, no claim


def test_ppocr_is_the_reference_scale(ccpd_crops):
    raw_reader, reader = _reader("ppocr", calibrated=False), _reader("ppocr")
    ref = load_maps()[REFERENCE]
    for crop, _ in ccpd_crops:
        raw, read = raw_reader.read_crop(crop), reader.read_crop(crop)  # one decode: no threshold decides the path
        assert read.confidence == raw.confidence and read.probability == round(ref.probability(raw.confidence), 4)
