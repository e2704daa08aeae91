"""The own and combined engines' decoding: the kind classifier (colour, double-row stitching), then the own
recogniser under the GA 36 templates, its province slot joined by the province classifier where shipped
(province_expert.py), with PP-OCRv4 as the second expert in ``combined`` (experts.py).
"""

from __future__ import annotations

import numpy as np

from . import plates
from .color import kind_consistent_color, reconcile
from .reads import (
    COLOR_MISMATCH_PENALTY,
    DECODE_SLOTS,
    DECODE_TEMPLATES,
    DOUBLE_SLOTS,
    DOUBLE_TEMPLATES,
    Attempt,
    PlateRead,
    evidence_score,
    kinds_ok,
)


class OwnDecoding:
    """PlateReader's own/combined decoding (a mixin: the reader's state is its own)."""

    def _own_probs(self, images: list[np.ndarray], attempts: list[Attempt]):
        """Classify each crop's kind, stitching double-row plates into one row, then run the recogniser(s)."""
        from .layout import stitch_double_row

        for att, guess in zip(attempts, self.kinds.classify([att.crop for att in attempts]), strict=True):
            att.guess = guess
            if self._trust(guess):
                att.color = guess.color
            if guess.double and not att.double:
                images[att.parts[0]] = stitch_double_row(att.crop)
                att.double = True
        if self.province_expert:
            probs, provinces = self.recognizer.probs_and_provinces(images)
        else:  # the province classifier is not run at all
            probs, provinces = self.recognizer.probs(images), [None] * len(images)
        return probs, images, {}, provinces

    def _spend_expert(self) -> bool:
        """Take one of this read's PP-OCRv4 crops (``expert_crops``; 0: no cap); False when none is left.

        At ~20x the own recogniser's cost a crop, the expert is what made combined's slow frames slow: a frame
        whose search tries many candidates asked it about each of them. The search reaches the best-scored
        candidates first, so a cap spends the expert where the plate most likely is."""
        if not self.expert_crops:
            return True
        state = self._per_read
        left = getattr(state, "expert_left", 0)
        if left <= 0:
            return False
        state.expert_left = left - 1
        return True

    def _own_penalty(self, kind: str, att: Attempt) -> float:
        if not self._trust(att.guess):
            return 0.0 if kinds_ok(kind, att.color) else COLOR_MISMATCH_PENALTY
        # The classifier's probability that the plate has a colour this kind may carry.
        colors = ("yellow", "white", "black") if kind == "suffixed" else plates.expected_colors(kind)
        return COLOR_MISMATCH_PENALTY * (1.0 - min(1.0, sum(att.guess.color_prob(c) for c in colors)))

    def _decode_own(self, att: Attempt, texts) -> PlateRead | None:
        from .experts import combine
        from .province_expert import apply_many

        own, images, expert, provinces = texts
        k = att.parts[0]
        rec = self.recognizer
        templates, slots = (DOUBLE_TEMPLATES, DOUBLE_SLOTS) if att.double else (DECODE_TEMPLATES, DECODE_SLOTS)
        labels = rec.province.labels if rec.province is not None else ()
        # Not text of plate length: skip the Viterbi work.
        first = rec.constrained_many(own[k], slots) if 4 <= len(rec.greedy(own[k]).text) <= 11 else None
        if first is not None:
            # The province classifier as the province slot's second expert (province_expert.py).
            first = apply_many(first, provinces[k], labels, rec.chars, slots)
        read = self._own_best(att, templates, first, "own") if first is not None else None
        if self.expert is None or (read is not None and read.confidence >= self.expert_below):
            return read
        # PP-OCRv4 as the second expert (on this crop only, once): both reads of each template are combined.
        if k not in expert:
            if not self._spend_expert():
                return read  # this read's PP-OCRv4 crops are spent: the own read stands
            expert[k] = self.expert.probs([images[k]], stretch=self.stretch)[0]
        if not 4 <= len(self.expert.greedy(expert[k]).text) <= 11 and read is None:
            return None
        second = self.expert.constrained_many(expert[k], slots)
        if first is None:
            first = apply_many(rec.constrained_many(own[k], slots), provinces[k], labels, rec.chars, slots)
        return self._own_best(att, templates, [combine(a, b, rec.chars, self.expert.chars, rec.index)
                                               for a, b in zip(first, second, strict=True)], "combined") or read

    def _own_best(self, att: Attempt, templates, reads, path: str) -> PlateRead | None:
        best = None
        for t, r in zip(templates, reads, strict=True):
            if r is None:
                continue
            adj = r.score - self._own_penalty(t.kind, att)
            if best is None or adj > best[0]:
                best = (adj, r)
        if best is None:
            return None
        r = best[1]
        try:
            kind = plates.parse(r.text).kind
        except plates.InvalidPlate:
            return None
        att.slot_probs = r.slot_probs
        if self._trust(att.guess):
            color = kind_consistent_color(att.color, kind, att.guess.color_prob)
        else:
            color = reconcile(att.color, kind, att.crop)
        conf = self._scale(evidence_score(min(r.char_probs), r.score), path)
        return PlateRead(plate=r.text, color=color, confidence=round(conf, 4),
                         box=att.cand.box, crop=att.crop, char_probs=[round(c, 4) for c in r.char_probs],
                         kind=kind)
