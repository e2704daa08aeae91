"""Turning each engine's raw evidence score into a probability that the plate is read exactly.

A raw score (weakest character's probability, discounted by a poor alignment) orders one engine's reads well but
is not a probability, and each engine's lives on its own scale: the own models are far surer of their characters
than PP-OCRv4. Each engine therefore has its own monotone (isotonic) map of "read exactly right" against its raw
score, stored as data in ``calibration.json`` beside this file with the model versions it was fitted for and how.
The maps are fitted by ``benchmarks/calibrate_confidence.py --engine E --write`` on photos we may tune on: the
CCPD **train** split (plate_reader/training/ccpd_split.json) and degraded copies of each photo. The EasyPR photos
are never used for it (they are evaluation only); the plate-reader benchmark prints the reliability there.

The reader's ``confidence`` is put on one scale for every engine, PP-OCRv4's (``REFERENCE``): another engine's
raw score goes through its own map to a probability and back through the reference map's inverse
(``ConfidenceMap.to_reference``). So one threshold — the reader's own (when to stop searching, when to run the
text-detection fallback) and the gate tracker's (when a vote settles) — means one probability whichever engine
runs, and ``probability`` is the reference map of that confidence.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MAPS_FILE = Path(__file__).with_name("calibration.json")
# The engine whose raw scale every reader's confidence is expressed on (the tracker's thresholds were set on it).
REFERENCE = "ppocr"
Knots = tuple[tuple[float, float], ...]


def calibrate(raw: float, knots: Sequence[tuple[float, float]]) -> float:
    """Probability that a read with this raw score is exactly right (0–1, monotone in ``raw``)."""
    xs = [k[0] for k in knots]
    ys = [k[1] for k in knots]
    return float(np.clip(np.interp(float(raw), xs, ys), 0.0, 1.0))


def invert(p: float, knots: Sequence[tuple[float, float]]) -> float:
    """A raw score whose probability under ``knots`` is ``p``: isotonic maps have flat stretches, so the map is
    made strictly increasing by a negligible tilt first (1e-6 per knot), which picks a point inside a flat one."""
    xs = np.array([k[0] for k in knots], dtype=float)
    ys = np.array([k[1] for k in knots], dtype=float) + 1e-6 * np.arange(len(knots))
    return float(np.clip(np.interp(float(p), ys, xs), 0.0, 1.0))


@dataclass(frozen=True)
class ConfidenceMap:
    engine: str
    knots: Knots
    models: dict[str, str] = field(default_factory=dict)  # the model versions the map was fitted for
    fitted: dict[str, Any] = field(default_factory=dict)  # provenance: data, size, command, errors

    def probability(self, raw: float) -> float:
        return calibrate(raw, self.knots)

    def to_reference(self, raw: float, reference: ConfidenceMap | None) -> float:
        """This engine's raw score as the reference engine's raw score of the same probability."""
        if reference is None or reference is self or reference.knots == self.knots:
            return float(raw)
        return invert(self.probability(raw), reference.knots)


def load_maps(path: Path = MAPS_FILE) -> dict[str, ConfidenceMap]:
    """Every engine's map from the data file (an absent file: no maps, raw scores stand as they are)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    out = {}
    for engine, entry in doc.get("engines", {}).items():
        knots = tuple((float(x), float(y)) for x, y in entry["knots"])
        xs, ys = [k[0] for k in knots], [k[1] for k in knots]
        if xs != sorted(xs) or ys != sorted(ys):
            raise ValueError(f"{path}: the {engine} map is not monotone")
        out[engine] = ConfidenceMap(engine, knots, dict(entry.get("models", {})), dict(entry.get("fitted", {})))
    return out


def maps_for(engine: str, models: dict[str, str], path: Path = MAPS_FILE
             ) -> tuple[ConfidenceMap | None, ConfidenceMap | None]:
    """(the engine's map, the reference map). A map fitted for other model versions than the reader runs is still
    used (it is the best there is) but logged: refit it with benchmarks/calibrate_confidence.py."""
    maps = load_maps(path)
    own, ref = maps.get(engine), maps.get(REFERENCE)
    if own is None:
        log.warning("no confidence map for engine %s in %s: its raw scores stand uncalibrated", engine, path)
    elif stale(own, models):
        log.warning("the %s confidence map was fitted for %s, this reader runs %s: refit it "
                    "(benchmarks/calibrate_confidence.py --engine %s --write)", engine, own.models, models, engine)
    return own, ref


def stale(m: ConfidenceMap, models: dict[str, str]) -> bool:
    """Whether the map was fitted for other versions of the models this reader runs."""
    return any(models.get(name) != version for name, version in m.models.items()) or set(models) != set(m.models)


def save_map(m: ConfidenceMap, path: Path = MAPS_FILE) -> None:
    """Write (or replace) one engine's map in the data file, keeping the others."""
    def update(doc: dict) -> None:
        doc.setdefault("about", "Confidence -> probability of an exact read, per engine (plate_reader/calibration.py); "
                                "written by benchmarks/calibrate_confidence.py --write, do not edit by hand.")
        doc.setdefault("engines", {})[m.engine] = {"models": m.models, "fitted": m.fitted,
                                                   "knots": [list(k) for k in m.knots]}
        doc["engines"] = dict(sorted(doc["engines"].items()))

    update_data_file(Path(path), update)


def update_data_file(path: Path, update: Callable[[dict], None]) -> None:
    """Read-modify-write the JSON data file under a lock beside it: a map fit and a threshold derivation (or two
    fits) may write it at once, each keeping what the others wrote."""
    import fcntl
    import hashlib
    import tempfile

    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"cleangate-calibration-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            doc = {}
        update(doc)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)


def fit_knots(raw: Sequence[float], correct: Sequence[bool], *, min_block: int = 12,
              ceiling: float = 0.995) -> Knots:
    """Isotonic regression (pool adjacent violators) of ``correct`` on ``raw``, as interpolation knots.

    Blocks are first grown to at least ``min_block`` reads so one lucky read does not become a knot; each block
    gives a knot at its mean raw score. The map is pinned to (0, 0) and to ``ceiling`` at raw 1: no read is
    ever certain.
    """
    if len(raw) != len(correct) or not raw:
        raise ValueError("need as many outcomes as scores, and at least one")
    order = np.argsort(np.asarray(raw, dtype=float), kind="stable")
    x = np.asarray(raw, dtype=float)[order]
    y = np.asarray(correct, dtype=float)[order]
    # Start from blocks of min_block consecutive reads, then pool neighbours while they decrease.
    blocks = [[float(x[i : i + min_block].sum()), float(y[i : i + min_block].sum()), len(x[i : i + min_block])]
              for i in range(0, len(x), min_block)]
    if len(blocks) > 1 and blocks[-1][2] < min_block:
        last = blocks.pop()
        blocks[-1] = [a + b for a, b in zip(blocks[-1], last, strict=True)]
    stack: list[list[float]] = []
    for b in blocks:
        stack.append(list(b))
        while len(stack) > 1 and stack[-2][1] / stack[-2][2] >= stack[-1][1] / stack[-1][2]:
            top = stack.pop()
            stack[-1] = [a + c for a, c in zip(stack[-1], top, strict=True)]
    knots = [(0.0, 0.0)]
    for sx, sy, n in stack:
        knots.append((round(sx / n, 4), round(min(ceiling, sy / n), 4)))
    knots.append((1.0, max(ceiling, knots[-1][1])))
    # Equal raw means (ties) would make the interpolation ambiguous: keep the last of each.
    out: dict[float, float] = {}
    for kx, ky in knots:
        out[kx] = max(ky, max(out.values(), default=0.0))
    return tuple(sorted(out.items()))
