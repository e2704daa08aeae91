"""From a frame and its plate candidates to the crops the recognisers read: rectified with the trained margin,
straightened and tightened on a second pass, double-row plates cut into their rows, and an image that is
already a plate crop read whole and from the plate found inside it (crop_fit.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .color import classify_color
from .crop_fit import DOUBLE_QUAD_ASPECT, double_row_quads, plate_quads
from .locate import Candidate, quad_size, rectify, refine_quad
from .reads import Attempt, PlateRead, Sink

# A whole crop read as a single-row plate with every character at least this sure is not searched for a plate
# inside it (raw per-character probabilities decide, so a raw and a calibrated reader decode alike). CCPD train
# thumbnails and crops: 159 of 160 so read, none wrong, 5x faster (23 against 118 ms a crop).
FIT_UNLESS_SURE = 0.9
# Single-row plates found in a loose crop are also read cut close (2% of the width, no margin above and below):
# the recogniser reads small characters better so (a new-energy plate's province: yellow-green dev crops 42 of
# 80 against 30 with rectify's margin; blue 36 / 33 at best of either), and the better read wins.
TIGHT_PAD = (0.02, 0.0)


def _tight(quad: np.ndarray) -> np.ndarray:
    """The quad that ``rectify``'s usual margin turns into this quad cut with ``TIGHT_PAD``."""
    tl, tr, br, bl = quad
    c = quad.mean(0)
    sx = (1 + 2 * TIGHT_PAD[0]) / (1 + 2 * 0.06)
    sy = (1 + 2 * TIGHT_PAD[1]) / (1 + 2 * 0.14)
    wv, hv = (tr - tl + br - bl) / 4.0, (bl - tl + br - tr) / 4.0
    return np.float32([c - wv * sx - hv * sy, c + wv * sx - hv * sy, c + wv * sx + hv * sy, c - wv * sx + hv * sy])


def quad_aspect(quad: np.ndarray) -> float:
    qw, qh = quad_size(quad)
    return qw / max(qh, 1.0)


class CropPaths:
    """PlateReader's crop making (a mixin: the reader's state is its own)."""

    @staticmethod
    def _as_crop(read: PlateRead | None, crop: np.ndarray) -> PlateRead | None:
        """The read as a crop's: its box is the whole image (the plate's box, as the caller cut it)."""
        if read is None:
            return None
        h, w = crop.shape[:2]
        return replace(read, box=(0, 0, w, h))

    def _read_crop(self, crop: np.ndarray, sink: Sink | None = None) -> PlateRead | None:
        """The whole crop read as the plate, and (``fit_crops``) the plate found inside it cut the way the
        recognisers were trained (crop_fit.py), unless the whole crop read surely; the most confident read wins."""
        h, w = crop.shape[:2]
        quad = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float32)
        first: Sink = []
        r = self._read_candidates(crop, [Candidate(quad, "crop", 1.0, w / max(h, 1))], pad=False, sink=first)
        if sink is not None:
            sink += first
        if not self.fit_crops:
            return r
        # A double-row plate's rows are cut by the crop's shape, right or wrong: its reads are re-cut whatever
        # they scored.
        double = any(att.double for read, att in first if read is r)
        if r is not None and r.plate and not double and min(r.char_probs or [0.0]) >= FIT_UNLESS_SURE:
            return r
        # A loose crop (car body, a holder frame, a dealer strip round the plate): each plate quad found in it,
        # and for a plate that may be double-row the quad re-cut round its bottom row, so the row cut of
        # layout.stitch_double_row falls between the rows. Read with rectify's margin, as trained.
        quads = plate_quads(crop)
        quads += double_row_quads(crop, quads) + [_tight(q) for q in quads if quad_aspect(q) >= DOUBLE_QUAD_ASPECT]
        fits = [Candidate(q, "crop-fit", 1.0, quad_aspect(q)) for q in quads]
        for i in range(0, len(fits), 2):
            # Each found plate also straightened and tightened to its character row (second pass), as the
            # scene search does: small characters (a new-energy plate's province) read better so.
            for fit in (self._read_batch(crop, fits[i:i + 2], True, sink),
                        self._read_refined(crop, fits[i:i + 2], sink) if self.refine else None):
                if fit is not None and fit.plate and (r is None or not r.plate or fit.confidence > r.confidence):
                    r = fit
        return r

    def _read_batch(self, frame: np.ndarray, cands: Sequence[Candidate], pad: bool,
                    sink: Sink | None = None) -> PlateRead | None:
        """Cut each candidate's crop (``pad``: rectified with the trained margin; else the frame is the crop) and
        recognise them as one batch."""
        images: list[np.ndarray] = []
        attempts: list[Attempt] = []
        for cand in cands:
            if pad:
                crop = rectify(frame, cand.quad, out_h=64)
            else:
                crop = frame
            color = classify_color(crop)
            images.append(crop)
            attempts.append(Attempt(cand, crop, color, False, (len(images) - 1,)))
            if self.kinds is not None:
                # The kind classifier tells double-row plates (see _recognise); only the yellow truck whose
                # edge blob is the big bottom row alone needs the plate grown upwards first, as below.
                if pad and 3.4 <= cand.aspect <= 5.8 and color == "yellow":
                    tl, tr, br, bl = cand.quad
                    up = (bl - tl) * 0.8
                    tall_quad = np.array([tl - up, tr - up, br, bl], dtype=np.float32)
                    tall = rectify(frame, tall_quad, out_h=64)
                    images.append(tall)
                    attempts.append(Attempt(Candidate(tall_quad, cand.source, cand.score, cand.aspect / 1.8),
                                            tall, color, False, (len(images) - 1,)))
                continue
            double_quad = None
            # Rear truck plates: two rows, province+letter above five characters.
            if cand.aspect < 2.6 and color in ("yellow", "unknown", "white", "green", "yellow-green"):
                double_quad = cand.quad
            elif pad and 3.4 <= cand.aspect <= 5.8 and color == "yellow":
                # On a yellow-ish truck the colour mask fails and the edge blob is only the big bottom row:
                # the smaller top row sits about 0.8 of that row's height above it.
                tl, tr, br, bl = cand.quad
                up = (bl - tl) * 0.8
                double_quad = np.array([tl - up, tr - up, br, bl], dtype=np.float32)
            if double_quad is not None:
                tall = rectify(frame, double_quad, out_h=128, pad_y=0.06) if pad else frame
                th = tall.shape[0]
                top = tall[: int(th * 0.42)]
                bottom = tall[int(th * 0.34) :]
                # The top row's two characters sit in the middle of the plate.
                tw = top.shape[1]
                top = top[:, int(tw * 0.18) : int(tw * 0.82)]
                if self.paddle is not None:
                    # PaddleOCR's decoder drops characters of the short top row; stitched to the left of the
                    # bottom row at the same height, the two rows read as one single-row plate.
                    import cv2

                    bh = bottom.shape[0]
                    top = cv2.resize(top, (max(8, round(top.shape[1] * bh / max(top.shape[0], 1))), bh))
                    images.append(np.hstack([top, bottom]))
                    attempts.append(Attempt(cand, tall, color, True, (len(images) - 1,)))
                else:
                    images += [top, bottom]
                    attempts.append(Attempt(cand, tall, color, True, (len(images) - 2, len(images) - 1)))
        return self._recognise(images, attempts, sink)

    def _read_refined(self, frame: np.ndarray, cands: Sequence[Candidate],
                      sink: Sink | None = None) -> PlateRead | None:
        """The second pass: each candidate straightened and tightened to its character rows (locate.refine_quad)."""
        images: list[np.ndarray] = []
        attempts: list[Attempt] = []
        for cand in cands:
            rq = refine_quad(frame, cand.quad) if cand.aspect >= 1.5 else None
            if rq is None:
                continue
            crop = rectify(frame, rq, pad_x=0.03, pad_y=0.06, out_h=64)
            images.append(crop)
            attempts.append(Attempt(Candidate(rq, cand.source, cand.score, cand.aspect), crop,
                                    classify_color(crop), False, (len(images) - 1,), refined=True))
        return self._recognise(images, attempts, sink)
