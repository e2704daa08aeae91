"""What a read is and what every engine's decoding shares: the read, one crop's attempt, the GA 36 decoding
templates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import plates
from .locate import Candidate


@dataclass
class PlateRead:
    plate: str | None
    color: str
    confidence: float
    box: tuple[int, int, int, int] | None  # x, y, w, h in frame pixels
    crop: np.ndarray | None = None  # rectified plate crop (BGR) for snapshots
    char_probs: list[float] | None = None
    kind: str | None = None
    # The probability that ``plate`` is exactly right (see calibration.py); None when there is no plate, or
    # for the paddle engine, whose scores are not fitted. ``confidence`` is the evidence score on PP-OCRv4's
    # scale whichever engine read (calibration.py): the reader's and the gate tracker's thresholds are set in it.
    probability: float | None = None


# Plate kinds each background colour may carry; a read of another kind must beat these by a margin.
KINDS_BY_COLOR = {c: plates.kind_for_color(c) for c in plates.COLORS}
COLOR_MISMATCH_PENALTY = 0.08  # in mean log-probability per CTC frame
# Decoding templates: the six 7-character suffix kinds share one template whose last slot takes any suffix,
# which cuts the Viterbi work; the result is re-parsed to name its kind (and drop e.g. 港 without 粤Z).
_SUFFIX7 = plates.Template("suffixed", (plates.PROVINCES, plates.AUTHORITY) + (plates.ALNUM,) * 4 + ("挂学警港澳领",))
DECODE_TEMPLATES = tuple(t for t in plates.TEMPLATES if t.kind in ("ordinary", "new_energy_small",
                                                                   "new_energy_large", "embassy")) + (_SUFFIX7,)
DECODE_SLOTS = [t.slots for t in DECODE_TEMPLATES]
# Double-row plates: the 7-character templates, each distinct slot list once (province+letter over five).
DOUBLE_TEMPLATES = tuple(t for i, t in enumerate(DECODE_TEMPLATES) if len(t) == 7 and t.kind != "embassy"
                         and all(u.slots != t.slots for u in DECODE_TEMPLATES[:i]))
DOUBLE_SLOTS = [t.slots for t in DOUBLE_TEMPLATES]


def better(a: PlateRead | None, b: PlateRead | None) -> PlateRead | None:
    """The more confident of two reads with a plate."""
    if b is None or not b.plate:
        return a
    if a is None or not a.plate:
        return b
    return b if b.confidence > a.confidence else a


def evidence_score(min_prob: float, score: float) -> float:
    """Map raw evidence to 0–1: the weakest character's probability, discounted by a poor overall alignment."""
    return float(min(1.0, max(0.0, min_prob * math.exp(min(0.0, score + 0.05) * 2.0))))


@dataclass
class Attempt:
    cand: Candidate
    crop: np.ndarray
    color: str
    double: bool
    parts: tuple[int, ...]  # indices into the batch of crops sent to the recogniser
    # Set by the decoder for the per-character ensemble: per position, the slot's allowed dictionary indices and
    # their probabilities on that position's frames (onnx engine only).
    slot_probs: list | None = None
    refined: bool = False  # the second-pass (straightened, tightened) crop
    guess: object | None = None  # own/combined engines: the kind classifier's KindGuess for the crop


Sink = list[tuple[PlateRead, Attempt]]


def kinds_ok(kind: str, color: str) -> bool:
    """Whether a plate of this kind may have this background colour ("unknown": any)."""
    if kind == "suffixed":  # trailer/learner are yellow, police white, 港澳领 black
        return color in ("unknown", "yellow", "white", "black")
    return color == "unknown" or kind in KINDS_BY_COLOR.get(color, ())
