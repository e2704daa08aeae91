"""The province slot's own expert: a classifier of the plate's first character, multiplied into the CTC read.

The province is the slot the CTC recogniser gets wrong most (a 31-way choice among complex glyphs, where the
letters and digits are a 34-way choice among simple ones). A small classifier (``plate_prov.onnx``) looks only at
the left of the recogniser's own input — where the province is on every layout, the double-row plate's top row
included once it is stitched — and gives a posterior over the 31 provinces (and "other"). Here it joins the
read as a second expert over that one slot: the slot's CTC distribution times the classifier's, renormalised
(``apply``). Pure: no I/O, no model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import plates
from .recognize import TextRead

# A province the classifier gives nothing to still keeps a trace of its CTC evidence.
_EPS = 1e-4


def apply(read: TextRead | None, posterior: np.ndarray | None, labels: Sequence[str], chars: Sequence[str],
          slots: Sequence[str]) -> TextRead | None:
    """``read`` (of the template ``slots``) with its province slot re-decided by both experts.

    ``posterior`` is the classifier's softmax over ``labels``; ``chars`` the recogniser's class list (what the
    slot's indices point into). A template whose first slot is not the province (使 plates) and a read
    without per-slot probabilities are returned unchanged. The slot's character becomes the one maximising the
    product; its probability is the product's posterior times how sure the recogniser is that a character is
    there at all (as ``experts.combine`` does), so a crop with no plate on it stays unsure.
    """
    if posterior is None:
        return read
    return _apply(read, _by_label(posterior, labels), chars, slots)


def _by_label(posterior: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    return dict(zip(labels, np.asarray(posterior, dtype=np.float64).tolist(), strict=True))


def _apply(read: TextRead | None, by_label: dict[str, float], chars: Sequence[str],
           slots: Sequence[str]) -> TextRead | None:
    if read is None or not read.slot_probs or not slots or slots[0] != plates.PROVINCES:
        return read
    idx, pr = read.slot_probs[0]
    q = np.array([by_label.get(chars[int(k)], 0.0) for k in idx], dtype=np.float64)
    joint = np.asarray(pr, dtype=np.float64) * np.maximum(q, _EPS)
    total = float(joint.sum())
    if not np.isfinite(total) or total <= 0.0:
        return read
    joint /= total
    best = int(joint.argmax())
    present = min(1.0, read.slot_totals[0]) if read.slot_totals else 1.0
    text = chars[int(idx[best])] + read.text[1:]
    char_probs = [min(1.0, float(joint[best]) * present)] + list(read.char_probs[1:])
    return TextRead(text, char_probs, read.score, read.kind, slot_probs=[(idx, joint)] + list(read.slot_probs[1:]),
                    slot_totals=read.slot_totals)


def apply_many(reads: Sequence[TextRead | None], posterior: np.ndarray | None, labels: Sequence[str],
               chars: Sequence[str], slot_lists: Sequence[Sequence[str]]) -> list[TextRead | None]:
    """``apply`` to each template's read of one crop (the posterior looked up by character once for all)."""
    if posterior is None:
        return list(reads)
    by_label = _by_label(posterior, labels)
    return [_apply(r, by_label, chars, slots) for r, slots in zip(reads, slot_lists, strict=True)]
