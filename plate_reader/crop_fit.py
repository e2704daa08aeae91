"""Finds the plate inside a loose crop: a camera's plate thumbnail or a detector's box, with car body, a holder
frame or a dealer strip round the plate.

The recognisers were trained on crops cut like ``locate.rectify`` cuts them (6% of the plate's width, 14% of its
height round the plate), and a double-row plate's rows are cut at a fixed share of that crop's height
(``layout.stitch_double_row``): read whole, a loose crop shifts that cut off the row gap. These quads let the
reader cut the crop the trained way. Pure OpenCV, no model.
"""

from __future__ import annotations

import cv2
import numpy as np

from .locate import fit_quad, quad_size, run_around

# (name, lower HSV, upper HSV) of plate backgrounds. Yellow-green plates are a yellow-to-green gradient: their
# mask is the union of the two.
_COLOURS = (
    ("yellow", ((10, 60, 60), (34, 255, 255)),),
    ("green", ((35, 35, 50), (94, 255, 255)),),
    ("yellow-green", ((10, 50, 50), (34, 255, 255)), ((35, 35, 50), (94, 255, 255))),
    ("blue", ((95, 70, 40), (130, 255, 255)),),
    ("white", ((0, 0, 150), (180, 55, 255)),),
)
# A plate fills between these shares of a crop that holds it; more is the crop itself (or a car of the plate's
# colour), less is a sticker or a light.
_FILL = (0.22, 0.92)
# Plate shapes: 440x220 double-row (2.0) to 480x140 new-energy (3.4), foreshortened or sheared.
_ASPECT = (1.3, 5.5)
# Characters span these shares of a plate's height (single-row: 25-115 mm of 140; double-row: 15-200 of 220)
# and of its width (single-row 15.5-424.5 of 440).
_SINGLE_TEXT_Y = (25 / 140, 115 / 140)
_DOUBLE_TEXT_Y = (15 / 220, 200 / 220)
_TEXT_X = (15.5 / 440, 424.5 / 440)


def colour_quads(crop: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The plate's four corners from each plate-background colour that outlines a plate-sized blob."""
    h, w = crop.shape[:2]
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    # Characters punch holes in the background's mask: a closing about a stroke gap wide fills them.
    close = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, w // 14) | 1, max(3, h // 9) | 1))
    opened = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, w // 40) | 1, max(3, h // 20) | 1))
    out: list[tuple[str, np.ndarray]] = []
    for name, *ranges in _COLOURS:
        m = np.zeros((h, w), np.uint8)
        for lo, hi in ranges:
            m |= cv2.inRange(hsv, lo, hi)
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, close)
        # The opening cuts thin bridges to body parts of a similar colour.
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, opened)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            continue
        c = max(contours, key=cv2.contourArea)
        share = cv2.contourArea(c) / float(h * w)
        if not _FILL[0] <= share <= _FILL[1]:
            continue
        quad, qw, qh = fit_quad(c)
        if qh < 6 or not _ASPECT[0] <= qw / qh <= _ASPECT[1]:
            continue
        out.append((name, quad))
    # Largest first: a yellow-green plate's yellow or green part alone cuts characters off.
    return sorted(out, key=lambda nq: -cv2.contourArea(nq[1]))


def _strokes(gray: np.ndarray) -> np.ndarray:
    gray = cv2.equalizeHist(gray)
    sob = np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3))
    thr = max(float(np.percentile(sob, 80)), 1.0)
    return (sob >= thr).astype(np.float32)


def _runs(on: np.ndarray) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, v in enumerate(on.tolist() + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append((start, i - 1))
            start = None
    return runs


def text_quad(crop: np.ndarray, double: bool) -> np.ndarray | None:
    """The plate's corners from where its characters are: rows and columns dense in vertical strokes.

    Colour-blind (night, IR, a car the plate's colour); axis-aligned, so for crops already about upright.
    A double-row plate is the span from its top row's first stroke row to its bottom row's last.
    """
    h, w = crop.shape[:2]
    if h < 12 or w < 24:
        return None
    st = _strokes(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop)
    rows = np.convolve(st.mean(1), np.ones(3) / 3, mode="same")
    peak = float(rows.max())
    if peak < 0.12:
        return None
    runs = [r for r in _runs(rows >= peak * 0.4) if r[1] - r[0] >= max(2, h // 12)]
    if not runs:
        return None
    if double:
        # Both rows: from the first run's top to the last run's bottom, if the span looks like a plate's text.
        y0, y1 = runs[0][0], runs[-1][1]
        lo, hi = _DOUBLE_TEXT_Y
    else:
        # The densest run is the character row.
        y0, y1 = max(runs, key=lambda r: float(rows[r[0]:r[1] + 1].sum()))
        lo, hi = _SINGLE_TEXT_Y
    cols = np.convolve(st[y0:y1 + 1].mean(0), np.ones(5) / 5, mode="same")
    xs = np.nonzero(cols > 0.08)[0]
    if len(xs) < 2:
        return None
    x0, x1 = float(xs[0]), float(xs[-1])
    # Grow the text box back to the plate's edges.
    ph = (y1 - y0 + 1) / (hi - lo)
    pw = (x1 - x0 + 1) / (_TEXT_X[1] - _TEXT_X[0])
    top, left = y0 - lo * ph, x0 - _TEXT_X[0] * pw
    if pw / ph < _ASPECT[0] or pw / ph > _ASPECT[1]:
        return None
    return np.array([[left, top], [left + pw, top], [left + pw, top + ph], [left, top + ph]], np.float32)


def plate_quads(crop: np.ndarray, double: bool | None = None) -> list[np.ndarray]:
    """Quads of the plate in this crop (corner order tl, tr, br, bl), most trusted first; an empty list when
    no plate-sized region is found or each is the whole crop already (nothing to tighten)."""
    h, w = crop.shape[:2]
    found = [q for _, q in colour_quads(crop)]
    for dbl in ((False, True) if double is None else (double,)):
        q = text_quad(crop, dbl)
        if q is not None:
            found.append(q)
    kept: list[np.ndarray] = []
    for q in found:
        qw, qh = quad_size(q)
        # Nothing to tighten: the plate already fills the crop about as the trained crops do.
        if qw >= w * 0.95 and qh >= h * 0.85:
            continue
        if all(np.abs(q - k).max() > max(2.0, 0.04 * max(qw, qh)) for k in kept):
            kept.append(q)
    return kept


# Double-row plates (GA 36, mm of 440x220): the bottom row's five characters span 90-200 mm down and
# 27.5-412.5 mm across (centred); a trained crop is the plate with 6% of its width and 14% of its height round it.
_BOTTOM_Y = (90.0, 200.0)
_DOUBLE_MM = (440.0, 220.0)


def row_window_box(view: np.ndarray, pad_x: float = 0.06, pad_y: float = 0.14
                   ) -> tuple[float, float, float, float] | None:
    """Where a double-row plate's trained crop is in this crop (x0, y0, x1, y1 pixels, maybe beyond its edges),
    placed round the plate's bottom row by GA 36's geometry; None when no such row is found.

    The bottom row is the band of rows densest in vertical strokes in the lower part of the crop.
    """
    h, w = view.shape[:2]
    if h < 16 or w < 24:
        return None
    st = _strokes(cv2.cvtColor(view, cv2.COLOR_BGR2GRAY) if view.ndim == 3 else view)
    rows = np.convolve(st.mean(1), np.ones(3) / 3, mode="same")
    lo = int(h * 0.35)
    c = lo + int(np.argmax(rows[lo:]))
    peak = float(rows[c])
    if peak < 0.12:
        return None
    on = rows >= peak * 0.4
    b0, b1 = run_around(on, c)
    if b1 - b0 < h * 0.2:
        return None
    cols = np.convolve(st[b0:b1 + 1].mean(0), np.ones(5) / 5, mode="same")
    xs = np.nonzero(cols > 0.08)[0]
    if len(xs) < 2 or xs[-1] - xs[0] < (b1 - b0) * 1.5:
        return None
    # Pixels per mm from the row's height (the plate's vertical edges may count as strokes, so its width would
    # not tell the scale); across, the plate is centred on the row's strokes.
    s = (b1 - b0 + 1) / (_BOTTOM_Y[1] - _BOTTOM_Y[0])
    pw, ph = _DOUBLE_MM
    cx = (xs[0] + xs[-1]) / 2.0
    return (cx - pw * (0.5 + pad_x) * s, b0 - (_BOTTOM_Y[0] + ph * pad_y) * s,
            cx + pw * (0.5 + pad_x) * s, b0 + (ph * (1 + pad_y) - _BOTTOM_Y[0]) * s)


# A crop this narrow for its height, or a plate quad this narrow, may hold a double-row plate (440x220 mm: 1.75
# with rectify's margin, 2.0 without; single-row plates are 3.1 and more).
_DOUBLE_CROP_ASPECT = 2.4
DOUBLE_QUAD_ASPECT = 2.6


def _view(crop: np.ndarray, quad: np.ndarray, pad_x: float = 0.06, pad_y: float = 0.14,
          out_h: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """``locate.rectify``'s crop of the quad, and the homography from the crop to it."""
    tl, tr, br, bl = quad
    wv, hv = (tr - tl + br - bl) / 2.0, (bl - tl + br - tr) / 2.0
    q = np.float32([tl - wv * pad_x - hv * pad_y, tr + wv * pad_x - hv * pad_y, br + wv * pad_x + hv * pad_y,
                    bl - wv * pad_x + hv * pad_y])
    out_w = int(np.clip(round(out_h * np.linalg.norm(wv) * (1 + 2 * pad_x) /
                              max(np.linalg.norm(hv) * (1 + 2 * pad_y), 1.0)), 16, out_h * 10))
    M = cv2.getPerspectiveTransform(q, np.float32([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]]))
    return cv2.warpPerspective(crop, M, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), M


def _box_quad(box: tuple[float, float, float, float]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def double_row_quads(crop: np.ndarray, quads: list[np.ndarray]) -> list[np.ndarray]:
    """For the crop and each plate quad in it that may be a double-row plate: the plate re-placed round its
    bottom row (``row_window_box``), as a quad in the crop, so a read with rectify's margin cuts the rows where a
    trained crop has them."""
    h, w = crop.shape[:2]
    out = []
    if w / max(h, 1) < _DOUBLE_CROP_ASPECT:
        box = row_window_box(crop, 0.0, 0.0)
        # In a crop of the plate the plate is most of its height (more than half with 22% of body above and
        # below); a smaller "plate" is a row found elsewhere.
        if box is not None and 0.5 * h <= box[3] - box[1] <= 1.1 * h:
            out.append(_box_quad(box))
    for q in quads:
        qw, qh = quad_size(q)
        if qw / max(qh, 1.0) >= DOUBLE_QUAD_ASPECT:
            continue
        view, M = _view(crop, q)
        box = row_window_box(view, 0.0, 0.0)
        # The view is the found plate with rectify's margin: the plate is 1/1.28 of its height, give or take
        # the finding's error.
        if box is not None and 0.55 * view.shape[0] <= box[3] - box[1] <= 1.0 * view.shape[0]:
            out.append(cv2.perspectiveTransform(_box_quad(box)[None], np.linalg.inv(M))[0].astype(np.float32))
    return out
