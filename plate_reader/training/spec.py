"""The models' input specs, alphabet and labels: what the exported json files say (MODELS-CONTRACT.md)."""

from __future__ import annotations

import numpy as np

from plate_reader import plates
from plate_reader.training.render import KINDS

ALPHABET: tuple[str, ...] = tuple(plates.PROVINCES + plates.AUTHORITY + plates.DIGITS + "挂学警港澳使领")
CHAR_INDEX = {c: i + 1 for i, c in enumerate(ALPHABET)}  # class 0 is the CTC blank
LABELS: tuple[str, ...] = KINDS

REC_INPUT = {"height": 32, "width": 128, "channels": 1, "color": "gray", "mean": [0.5], "std": [0.5]}
KIND_INPUT = {"height": 40, "width": 80, "channels": 3, "color": "bgr", "mean": [0.5, 0.5, 0.5],
              "std": [0.5, 0.5, 0.5]}
# The province classifier reads the left columns of the recogniser's own (normalised) input: no second resize.
PROV_LABELS: tuple[str, ...] = tuple(plates.PROVINCES) + ("other",)
PROV_INPUT = {"of": "plate_rec", "columns": 48, "height": REC_INPUT["height"], "width": 48, "channels": 1}


def province_label(text: str) -> int:
    """The classifier's label of a plate text: its province, or "other" (使 plates, no text)."""
    return PROV_LABELS.index(text[0]) if text and text[0] in plates.PROVINCES else len(PROV_LABELS) - 1


def encode(text: str) -> list[int]:
    return [CHAR_INDEX[c] for c in text]


def kind_of(text: str, color: str, aspect: float) -> str | None:
    """Classifier label for a labelled real crop (gate exports): colour, plus the layout a yellow plate has."""
    if color == "yellow":
        # A double-row plate is 2:1 (440x220 mm); single-row ones are 3.1:1 or wider.
        return "yellow_double" if aspect < 2.4 else "yellow"
    return {"blue": "blue", "green": "green", "yellow-green": "yellow_green", "white": "white",
            "black": "black"}.get(color)


def greedy(logp: np.ndarray, alphabet: tuple[str, ...] | list[str] = ALPHABET) -> list[str]:
    """Best-path CTC decode of [N, T, C] log-probabilities (class 0 = blank)."""
    out = []
    for seq in np.asarray(logp).argmax(-1):
        chars, prev = [], 0
        for c in seq:
            if c != prev and c != 0:
                chars.append(alphabet[c - 1])
            prev = c
        out.append("".join(chars))
    return out
