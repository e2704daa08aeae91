"""Product of experts: two recognisers' reads of one crop combined over the same GA 36 template.

Each engine aligns its own CTC output to the template (``CTCDecoder.constrained_many``) and gives, per slot, a
distribution over the characters that slot allows. The combined read takes, slot by slot, the character with
the highest sum of the two log-probabilities: a character both models find likely beats one that only one of
them is sure of. The engines' dictionaries differ, so slots are matched by character, not by class index.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .recognize import TextRead

_EPS = 1e-6


def _by_char(slot: tuple[np.ndarray, np.ndarray], chars: Sequence[str]) -> dict[str, float]:
    idx, pr = slot
    return {chars[int(k)]: float(v) for k, v in zip(idx.tolist(), pr.tolist(), strict=True)}


def combine(first: TextRead | None, second: TextRead | None, first_chars: Sequence[str],
            second_chars: Sequence[str], first_index: dict[str, int]) -> TextRead | None:
    """The two reads of one template as one: per slot, the character maximising the summed log-probabilities.

    ``slot_probs`` of the result are in the first engine's class indices (``first_index``), so the reader's
    per-character ensemble can pool them like any read of that engine. One engine without a read (its output
    too short for the template) leaves the other's read as it is.
    """
    if first is None or second is None:
        return second if first is None else first
    if not first.slot_probs or not second.slot_probs or len(first.slot_probs) != len(second.slot_probs):
        return first
    ta = first.slot_totals or [1.0] * len(first.slot_probs)
    tb = second.slot_totals or [1.0] * len(second.slot_probs)
    text, probs, slot_probs = [], [], []
    for a, b, sa, sb in zip(first.slot_probs, second.slot_probs, ta, tb, strict=True):
        qa, qb = _by_char(a, first_chars), _by_char(b, second_chars)
        # Characters the first engine cannot emit are not candidates (both dictionaries hold the plate alphabet).
        joint = {c: qa[c] * qb.get(c, _EPS) for c in qa}
        total = sum(joint.values()) or 1.0
        best = max(joint, key=joint.__getitem__)
        text.append(best)
        # The product's posterior among the slot's characters, times how sure the two engines are (geometric
        # mean) that one of them is there at all: alone, the posterior would call any one-character slot, such
        # as 使 or 港, certain.
        probs.append(min(1.0, joint[best] / total * float(np.sqrt(min(sa, 1.0) * min(sb, 1.0)))))
        idx = np.array([first_index[c] for c in joint], dtype=np.int64)
        slot_probs.append((idx, np.array([v / total for v in joint.values()], dtype=np.float64)))
    return TextRead("".join(text), probs, (first.score + second.score) / 2, slot_probs=slot_probs)
