"""PP-OCRv4 text detection on a downscaled frame: the fallback when colour/edge localisation finds no plate."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from .locate import Candidate, _rect_quad
from .models import DET_FILE, make_session, model_path


class Detector:
    def __init__(self, threads: int = 1, side: int = 640) -> None:
        self.session = make_session(model_path(DET_FILE), threads)
        self._input = self.session.get_inputs()[0].name
        self.side = side
        self._lock = threading.Lock()

    def find(self, frame: np.ndarray, max_candidates: int = 6) -> list[Candidate]:
        H, W = frame.shape[:2]
        scale = self.side / max(H, W)
        # The model needs sides that are multiples of 32.
        nh = max(32, int(round(H * scale / 32)) * 32)
        nw = max(32, int(round(W * scale / 32)) * 32)
        img = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        x = img.astype(np.float32).transpose(2, 0, 1)[None] * (2.0 / 255.0) - 1.0
        with self._lock:
            prob = self.session.run(None, {self._input: x})[0][0, 0]
        bitmap = (prob > 0.3).astype(np.uint8)
        bitmap = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        sx, sy = W / nw, H / nh
        out: list[Candidate] = []
        for c in contours:
            if len(c) < 4:
                continue
            rect = cv2.minAreaRect(c)
            (cx, cy), (w, h), ang = rect
            if min(w, h) < 4:
                continue
            mask = np.zeros_like(bitmap)
            cv2.fillPoly(mask, [c], 1)
            score = float(prob[mask.astype(bool)].mean())
            if score < 0.5:
                continue
            # DB's unclip: grow the shrunk text kernel by area*ratio/perimeter on every side.
            d = (w * h) * 1.6 / (2 * (w + h))
            rect = ((cx, cy), (w + 2 * d, h + 2 * d), ang)
            quad, rw, rh = _rect_quad(rect)
            aspect = rw / max(rh, 1e-3)
            if not 1.5 <= aspect <= 10:
                continue
            quad = quad * np.array([sx, sy], dtype=np.float32)
            out.append(Candidate(quad, "det", score * rw * rh, float(aspect)))
        out.sort(key=lambda c: -c.score)
        return out[:max_candidates]
