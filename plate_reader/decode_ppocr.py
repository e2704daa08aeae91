"""The ppocr engine's decoding: PP-OCRv4's CTC probabilities under the GA 36 templates (double-row plates as
two rows), the colour's kinds preferred.
"""

from __future__ import annotations

import numpy as np

from . import plates
from .calibration import REFERENCE
from .color import reconcile
from .reads import (
    COLOR_MISMATCH_PENALTY,
    DECODE_SLOTS,
    DECODE_TEMPLATES,
    DOUBLE_TEMPLATES,
    Attempt,
    PlateRead,
    evidence_score,
    kinds_ok,
)


class PpocrDecoding:
    """PlateReader's PP-OCRv4 decoding (a mixin: the reader's state is its own)."""

    def _decode(self, att: Attempt, probs: list[np.ndarray]) -> PlateRead | None:
        rec = self.recognizer
        best = None  # (adjusted score, text, char_probs, kind, raw score)
        if att.double:
            p_top, p_bottom = probs[att.parts[0]], probs[att.parts[1]]
            tops = rec.constrained_many(p_top, [t.slots[:2] for t in DOUBLE_TEMPLATES])
            bots = rec.constrained_many(p_bottom, [t.slots[2:] for t in DOUBLE_TEMPLATES])
            for t, top, bot in zip(DOUBLE_TEMPLATES, tops, bots, strict=True):
                if top is None or bot is None:
                    continue
                score = (top.score + bot.score) / 2
                adj = score - (0 if kinds_ok(t.kind, att.color) else COLOR_MISMATCH_PENALTY)
                if best is None or adj > best[0]:
                    best = (adj, top.text + bot.text, top.char_probs + bot.char_probs, t.kind, score,
                            (top.slot_probs or []) + (bot.slot_probs or []))
        else:
            p = probs[att.parts[0]]
            g = rec.greedy(p)
            if not 4 <= len(g.text) <= 11:
                return None  # not text of plate length: skip the Viterbi work
            if self.province_prior:
                for t, r in zip(DECODE_TEMPLATES, rec.constrained_many(p, DECODE_SLOTS), strict=True):
                    if r is None:
                        continue
                    adj = r.score - (0 if kinds_ok(t.kind, att.color) else COLOR_MISMATCH_PENALTY)
                    if best is None or adj > best[0]:
                        best = (adj, r.text, r.char_probs, t.kind, r.score, r.slot_probs)
            else:
                # Stock-style decoding (argmax over the whole dictionary) plus position repair: for comparison.
                fixed = plates.repair(g.text)
                if fixed is not None and len(g.char_probs) == len(fixed):
                    best = (g.score, fixed, g.char_probs, plates.parse(fixed).kind, g.score, None)
        if best is None:
            return None
        _, text, char_probs, kind, score, slot_probs = best
        try:
            kind = plates.parse(text).kind
        except plates.InvalidPlate:
            return None
        conf = self._scale(evidence_score(min(char_probs), score), REFERENCE)
        att.slot_probs = slot_probs
        return PlateRead(
            plate=text,
            color=reconcile(att.color, kind, att.crop),
            confidence=round(conf, 4),
            box=att.cand.box,
            crop=att.crop,
            char_probs=[round(c, 4) for c in char_probs],
            kind=kind,
        )
