"""The per-character ensemble: a plate read without confidence is read a few more ways and each character voted
on with the reads' pooled probability mass (the province above all).
"""

from __future__ import annotations

import numpy as np

from . import plates
from .color import classify_color, reconcile
from .locate import Candidate, _iou, rectify
from .reads import Attempt, PlateRead, Sink


class Ensemble:
    """PlateReader's ensemble (a mixin: the reader's state is its own)."""

    def _ensemble(self, frame: np.ndarray, best: PlateRead, reads: Sink) -> PlateRead:
        """Read the winning plate a few more ways and vote per character, pooling probability mass."""
        won = next((att for r, att in reads if r is best), None)
        if won is None or won.double or not best.plate:
            return best
        extra: Sink = []
        quad = won.cand.quad
        cand = Candidate(quad, "variant", 1.0, 4.0)
        images, attempts = [], []
        for px, py in self.ensemble_margins:
            crop = rectify(frame, quad, pad_x=px, pad_y=py, out_h=64)
            images.append(crop)
            attempts.append(Attempt(cand, crop, classify_color(crop), False, (len(images) - 1,)))
        self._recognise(images, attempts, extra)
        if self.ensemble_stretch:
            # The winning crop again, squeezed: a different CTC alignment of the same pixels.
            att = Attempt(cand, won.crop, won.color, False, (0,))
            read = self._decode(att, self.recognizer.probs([won.crop], stretch=self.stretch * self.ensemble_stretch))
            if read is not None:
                extra.append((read, att))
        refined = any(att.refined and _iou(r.box, best.box) >= 0.5 for r, att in reads)
        if self.refine and not refined:
            self._read_refined(frame, [Candidate(quad, "variant", 1.0, 4.0)], extra)
        pool = [(r, att.slot_probs) for r, att in reads + extra if att.slot_probs and not att.double and r.plate
                and len(r.plate) == len(best.plate)
                and sum(a != b for a, b in zip(r.plate, best.plate, strict=True)) <= 2
                and _iou(r.box, best.box) >= 0.3]
        # The same crop may come back from several candidates: count each distinct read once.
        pool = list({(r.plate, r.confidence, r.box): (r, sp) for r, sp in pool}.values())
        if len(pool) < 2:
            return best
        chars = self.recognizer.chars
        # Each read votes with its calibrated confidence (its weakest character), spread over its per-position
        # probability mass, so a confident variant outvotes several shaky ones that agree.
        weights = [max(r.confidence, 0.01) for r, _ in pool]
        total = sum(weights)
        text, shares = [], []
        for i in range(len(best.plate)):
            mass: dict[int, float] = {}
            for (_, slot_probs), w in zip(pool, weights, strict=True):
                idx, pr = slot_probs[i]
                for k, v in zip(idx.tolist(), pr.tolist(), strict=True):
                    mass[k] = mass.get(k, 0.0) + w * v
            k = max(mass, key=mass.__getitem__)
            text.append(chars[k])
            shares.append(mass[k] / total)
        plate = "".join(text)
        if plate == best.plate or not plates.is_valid(plate):
            return best
        agreeing = [r for r, _ in pool if r.plate == plate]
        base = max(agreeing, key=lambda r: r.confidence) if agreeing else best
        conf = base.confidence if agreeing else min(best.confidence, min(shares))
        kind = plates.parse(plate).kind
        return PlateRead(plate=plate, color=reconcile(base.color, kind, base.crop), confidence=round(conf, 4),
                         box=base.box, crop=base.crop, char_probs=[round(c, 4) for c in shares], kind=kind)
