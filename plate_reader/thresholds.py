"""The own/combined engines' decision thresholds, stored as data beside the confidence maps.

``color_trust``: the kind classifier's colour is taken when it is at least this sure, else the crop's HSV colour.
``expert_below`` (combined only): PP-OCRv4 is asked only about crops the own models read below this confidence
(on the reference scale, so it moves when the own map is refitted). ``expert_crops`` (combined only): and about
at most this many crops of one read (0: no cap), the first the search reaches. All three depend on the weights,
so like the maps they are derived for one set of model files — by ``benchmarks/derive_thresholds.py --write``, on data we may
tune on (the CCPD train split and a synthetic set from the training renderer; never EasyPR) — and stored in
``calibration.json`` under ``"thresholds"`` per engine, with the model versions and file digests they were
derived for. A reader uses its engine's entry only when those match the models it runs; otherwise it falls back
to the constants below (the values chosen before there was a derivation) and says so.

The rules that pick a value from a measured table are here, as pure functions, so a test can pin them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .calibration import MAPS_FILE, update_data_file

log = logging.getLogger(__name__)

# The fallback values (reader.py's constants before the derivation; they were set on the EasyPR dev half).
FALLBACK_COLOR_TRUST = 0.7
FALLBACK_EXPERT_BELOW = 0.9
# No cap on the crops of one read shown to PP-OCRv4: how combined read before the cap was derived.
FALLBACK_EXPERT_CROPS = 0
ENGINES = ("own", "combined")
# The entries live beside the maps (read at each lookup, so a test can point it at a copy).
THRESHOLDS_FILE = MAPS_FILE
# The rules' tolerances, in percentage points.
EXPERT_TOLERANCE = 0.5


@dataclass(frozen=True)
class Thresholds:
    color_trust: float
    expert_below: float
    source: str  # "calibration.json" (a derived entry for these models) or "fallback"
    models: dict[str, str] = field(default_factory=dict)  # what the entry was derived for ({} for the fallback)
    derived: dict[str, Any] = field(default_factory=dict)  # provenance: data, sizes, table, command
    expert_crops: int = FALLBACK_EXPERT_CROPS  # combined: PP-OCRv4 crops per read at most (0: no cap)

    def info(self) -> dict[str, Any]:
        """What ``PlateReader.calibration`` reports for the thresholds."""
        return {"fitted_for": self.models, "current": self.source != "fallback", "source": self.source,
                "color_trust": self.color_trust, "expert_below": self.expert_below,
                "expert_crops": self.expert_crops}


FALLBACK = Thresholds(FALLBACK_COLOR_TRUST, FALLBACK_EXPERT_BELOW, "fallback")


def load_entries(path: Path | None = None) -> dict[str, dict[str, Any]]:
    try:
        doc = json.loads(Path(path or THRESHOLDS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return dict(doc.get("thresholds", {}))


def thresholds_for(engine: str, models: dict[str, str], path: Path | None = None) -> Thresholds:
    """The engine's derived thresholds if its entry was derived for exactly these models, else the fallback."""
    entry = load_entries(path).get(engine)
    if entry is None:
        log.warning("no derived thresholds for engine %s in %s: using the fallback constants", engine,
                    path or THRESHOLDS_FILE)
        return FALLBACK
    if dict(entry.get("models", {})) != models:
        log.warning("the %s thresholds were derived for %s, this reader runs %s: using the fallback constants "
                    "(re-derive: python -m benchmarks.derive_thresholds --write)", engine, entry.get("models"), models)
        return FALLBACK
    return Thresholds(float(entry["color_trust"]), float(entry.get("expert_below", FALLBACK_EXPERT_BELOW)),
                      "calibration.json", dict(entry["models"]), dict(entry.get("derived", {})),
                      int(entry.get("expert_crops", FALLBACK_EXPERT_CROPS)))


def save_entries(entries: dict[str, dict[str, Any]], path: Path | None = None) -> None:
    """Write (or replace) these engines' threshold entries, keeping the maps and the other entries. Holds the
    same lock as ``calibration.save_map`` (``calibration.update_data_file``)."""
    def update(doc: dict) -> None:
        doc.setdefault("thresholds", {}).update(entries)
        doc["thresholds"] = dict(sorted(doc["thresholds"].items()))

    update_data_file(Path(path or THRESHOLDS_FILE), update)


# -- the rules ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One candidate value measured on one data set."""
    value: float
    n: int
    exact: int  # reads whose plate is exactly right
    color: int = 0  # reads whose colour is right
    ms: float = 0.0  # mean time per read
    expert: int = 0  # crops PP-OCRv4 was asked about


def _pct(k: int, n: int) -> float:
    return 100.0 * k / max(1, n)


def _candidates(sets: Sequence[Sequence[Row]]) -> list[float]:
    """The candidate values the sets measured; every set must measure the same ones."""
    values = [r.value for r in sets[0]]
    if any([r.value for r in rows] != values for rows in sets):
        raise ValueError("every data set must measure the same candidates")
    return values


def _smallest_within(sets: Sequence[Sequence[Row]], order: Sequence[int], ref: int, tolerance: float) -> int | None:
    """The first index of ``order`` whose exact-read rate is within ``tolerance`` points of index ``ref``'s on
    every set (None if none is)."""
    for i in order:
        if all(_pct(rows[i].exact, rows[i].n) >= _pct(rows[ref].exact, rows[ref].n) - tolerance for rows in sets):
            return i
    return None


def choose_color_trust(sets: Sequence[Sequence[Row]]) -> float:
    """The candidate with the most right colours, summed over the data sets (each set's rows hold the same
    candidates); ties go to the most exact reads, then to the highest value — trust the classifier over the crop's
    HSV colour only as far as measured to help."""
    values = _candidates(sets)

    def key(i: int) -> tuple[int, int, float]:
        return (sum(rows[i].color for rows in sets), sum(rows[i].exact for rows in sets), values[i])

    return values[max(range(len(values)), key=key)]


def choose_expert_below(sets: Sequence[Sequence[Row]], tolerance: float = EXPERT_TOLERANCE) -> float:
    """The smallest candidate whose exact-read rate is within ``tolerance`` points of asking PP-OCRv4 about every
    crop (the largest candidate, > 1) on every data set: what asking always gains, for the fewest expert calls."""
    values = _candidates(sets)
    always = max(range(len(values)), key=values.__getitem__)
    if values[always] <= 1.0:
        raise ValueError("the candidates must include asking always (a value above 1)")
    # "always" is within tolerance of itself: some index is found.
    return values[_smallest_within(sets, sorted(range(len(values)), key=values.__getitem__), always, tolerance)]


def choose_expert_crops(sets: Sequence[Sequence[Row]], tolerance: float = EXPERT_TOLERANCE) -> int:
    """The smallest cap on a read's PP-OCRv4 crops whose exact-read rate is within ``tolerance`` points of no
    cap (the candidate 0, which must be measured) on every data set; 0 when no cap is."""
    values = [int(v) for v in _candidates(sets)]
    if 0 not in values:
        raise ValueError("the candidates must include no cap (0)")
    capped = sorted((i for i, v in enumerate(values) if v > 0), key=values.__getitem__)
    i = _smallest_within(sets, capped, values.index(0), tolerance)
    return 0 if i is None else values[i]
