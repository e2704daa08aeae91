"""Plate background colour from a rectified crop."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from . import plates

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


def background_hsv(crop: np.ndarray) -> tuple[float, float, float]:
    """Median H, S, V of the plate background: the larger of the two brightness classes (characters are the
    smaller one, bright on blue/black plates, dark on yellow/green/white ones)."""
    h, w = crop.shape[:2]
    inner = crop[int(h * 0.15) : max(int(h * 0.85), 1), int(w * 0.05) : max(int(w * 0.95), 1)]
    if inner.size == 0:
        inner = crop
    hsv = cv2.cvtColor(inner, cv2.COLOR_BGR2HSV).reshape(-1, 3)
    v = hsv[:, 2]
    t, _ = cv2.threshold(v.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = v > t
    bg = hsv[bright] if bright.mean() >= 0.5 else hsv[~bright]
    if len(bg) == 0:
        bg = hsv
    med = np.median(bg, axis=0)
    return float(med[0]), float(med[1]), float(med[2])


def _hue_color(hue: float) -> str:
    if 8 <= hue < 34:
        return "yellow"
    if 34 <= hue < 88:
        return "green"
    if 88 <= hue <= 140:
        return "blue"
    return "unknown"


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
    hue, sat, val = background_hsv(crop)
    # Faded and dusk plates keep their hue long after their saturation is gone.
    if sat >= 28 or (sat >= 14 and val >= 60):
        c = _hue_color(hue)
        if c != "unknown":
            return c
    if val >= 150:
        return "white"
    if val < 80:
        return "black"
    return "unknown"


def reconcile(color: str, kind: str | None, crop: np.ndarray | None) -> str:
    """Use the read's kind to settle a borderline hue: green plates always carry 8 characters (GA 36), so a
    7-character read on a cyan or lime background is a blue or yellow plate under a colour cast."""
    if crop is None or kind is None:
        return color
    if color in ("green", "yellow-green") and kind not in ("new_energy_small", "new_energy_large"):
        hue, _, _ = background_hsv(crop)
        return "yellow" if hue < 50 else "blue"
    if color == "unknown" and kind == "new_energy_small":
        return "green"
    return color


def kind_consistent_color(color: str, kind: str, color_prob: Callable[[str], float]) -> str:
    """The kind classifier's colour, unless the plate read cannot have it (GA 36: green and yellow-green plates
    carry 8 characters): then the colour, among those this kind of plate may have, that the classifier's
    probabilities (``color_prob``) favour."""
    allowed = plates.expected_colors(kind)
    if color in allowed:
        return color
    return max(allowed, key=color_prob)
