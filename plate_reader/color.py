"""Plate background colour from a rectified crop."""

from __future__ import annotations

import cv2
import numpy as np

COLORS = ("blue", "yellow", "green", "yellow-green", "white", "black", "unknown")


def color_fractions(crop: np.ndarray) -> dict[str, float]:
    """Share of the crop's inner area in each colour class (OpenCV HSV: H 0–180)."""
    h, w = crop.shape[:2]
    # The outer band holds the frame, bolts and the car body: keep the inner part.
    inner = crop[int(h * 0.12) : max(int(h * 0.88), 1), int(w * 0.04) : max(int(w * 0.96), 1)]
    if inner.size == 0:
        inner = crop
    hsv = cv2.cvtColor(inner, cv2.COLOR_BGR2HSV)
    H, S, V = hsv[..., 0].astype(np.int16), hsv[..., 1].astype(np.int16), hsv[..., 2].astype(np.int16)
    n = float(H.size)
    return {
        "blue": float(((H >= 95) & (H <= 130) & (S >= 70) & (V >= 45)).sum() / n),
        "yellow": float(((H >= 10) & (H <= 34) & (S >= 70) & (V >= 70)).sum() / n),
        "green": float(((H >= 35) & (H <= 94) & (S >= 35) & (V >= 60)).sum() / n),
        "white": float(((S < 50) & (V >= 150)).sum() / n),
        "black": float((V < 70).sum() / n),
    }


def _left_right(crop: np.ndarray, lo: int, hi: int) -> tuple[float, float]:
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    m = (hsv[..., 0] >= lo) & (hsv[..., 0] <= hi) & (hsv[..., 1] >= 50) & (hsv[..., 2] >= 60)
    half = m.shape[1] // 3
    return float(m[:, :half].mean()), float(m[:, -half:].mean())


def classify_color(crop: np.ndarray | None) -> str:
    """blue / yellow / green / yellow-green / white / black / unknown."""
    if crop is None or crop.size == 0:
        return "unknown"
    f = color_fractions(crop)
    # Large new-energy plates are two-tone: yellow on the left third, green on the rest.
    if f["yellow"] >= 0.08 and f["green"] >= 0.12:
        y_left, y_right = _left_right(crop, 10, 34)
        g_left, g_right = _left_right(crop, 35, 94)
        if y_left > y_right + 0.1 and g_right > g_left + 0.1:
            return "yellow-green"
    chroma = max(("blue", "yellow", "green"), key=f.__getitem__)
    if f[chroma] >= 0.22:
        return chroma
    # Small new-energy plates fade from white at the top to green at the bottom.
    if f["green"] >= 0.12 and f["green"] + f["white"] >= 0.45:
        return "green"
    if f["white"] >= 0.40 and f["black"] >= 0.05:
        return "white"
    if f["black"] >= 0.45 and f["white"] >= 0.05:
        return "black"
    return "unknown"
