"""The paddle engine's decoding: PaddleOCR's text and one score per crop, repaired to the plate grammar, and
its whole-frame detection + recognition fallback.
"""

from __future__ import annotations

import numpy as np

from . import plates
from .color import classify_color, reconcile
from .locate import rectify
from .reads import KINDS_BY_COLOR, Attempt, PlateRead


class TextDecoding:
    """PlateReader's PaddleOCR decoding (a mixin: the reader's state is its own)."""

    # -- paddle engine: text + one score per crop ---------------------------------------------------------
    def _repair(self, text: str, color: str) -> tuple[str, int] | None:
        """Grammar repair, preferring the kinds the plate's colour allows; returns (plate, substitutions)."""
        text = plates.normalize(text)
        for kinds in ((KINDS_BY_COLOR.get(color) if color != "unknown" else None), None):
            fixed = plates.repair(text, kinds=kinds)
            if fixed is not None:
                fixes = sum(a != b for a, b in zip(fixed, text, strict=False))
                return fixed, fixes + (0 if kinds is not None or color == "unknown" else 1)
        return None

    def _decode_text(self, att: Attempt, texts: list[tuple[str, float]]) -> PlateRead | None:
        text, score = texts[att.parts[0]]  # double-row plates arrive as one stitched line
        return self._text_read(text, score, att.color, att.cand.box, att.crop)

    def _text_read(self, text: str, score: float, color: str, box, crop) -> PlateRead | None:
        got = self._repair(text, color)
        if got is None:
            return None
        plate, fixes = got
        kind = plates.parse(plate).kind
        # Each grammar substitution is evidence the model was unsure: discount the line score for it.
        conf = float(min(1.0, max(0.0, score))) * (0.85 ** fixes)
        return PlateRead(plate=plate, color=reconcile(color, kind, crop) if crop is not None else color,
                         confidence=round(conf, 4), box=box, crop=crop,
                         char_probs=[round(float(score), 4)] * len(plate), kind=kind)

    def _paddle_frame(self, frame: np.ndarray) -> PlateRead | None:
        """Whole-frame PaddleOCR det+rec (the paddle engine's fallback), on the frame shrunk to ``det_side``."""
        import cv2

        H, W = frame.shape[:2]
        s = min(1.0, self.det_side / max(H, W))
        small = cv2.resize(frame, (round(W * s), round(H * s)), interpolation=cv2.INTER_AREA) if s < 1 else frame
        best: PlateRead | None = None
        for quad, text, score in self.paddle.ocr_frame(small):
            if len(quad) != 4:
                continue
            quad = quad / s
            crop = rectify(frame, quad, pad_x=0.0, pad_y=0.0)
            x0, y0 = quad.min(0)
            x1, y1 = quad.max(0)
            box = (int(x0), int(y0), int(round(x1 - x0)), int(round(y1 - y0)))
            read = self._text_read(text, score, classify_color(crop), box, crop)
            if read is not None and (best is None or read.confidence > best.confidence):
                best = read
        return best
