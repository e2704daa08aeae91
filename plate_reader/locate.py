"""Fast plate candidates with OpenCV: colour masks, vertical-edge density, contour geometry, rectification."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORK_SIDE = 1024  # localisation runs on a frame of about this long side; crops come from the full frame
MAX_UPSCALE = 1.0  # 1.5–2.0 measured: no dev gain for 10–25% more time

# (name, lower HSV, upper HSV): plate backgrounds. White is searched too but only kept with dense edges.
_MASKS = (
    ("blue", (95, 70, 45), (130, 255, 255)),
    ("yellow", (10, 70, 70), (34, 255, 255)),
    ("green", (35, 35, 60), (94, 255, 255)),
    ("white", (0, 0, 160), (180, 50, 255)),
    # Strict blue/yellow: a plate whose loose mask merges with a dark-blue grille or a yellow body still
    # separates from it here.
    ("blue", (100, 120, 90), (125, 255, 255)),
    ("yellow", (12, 120, 110), (32, 255, 255)),
)


@dataclass
class Candidate:
    quad: np.ndarray  # 4×2 float32 in full-frame pixels: tl, tr, br, bl
    source: str  # which mask (or "edges"/"det") produced it
    score: float
    aspect: float

    @property
    def box(self) -> tuple[int, int, int, int]:
        x0, y0 = self.quad.min(0)
        x1, y1 = self.quad.max(0)
        return int(x0), int(y0), int(round(x1 - x0)), int(round(y1 - y0))


def order_quad(pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float32).reshape(4, 2)
    s = pts.sum(1)
    d = pts[:, 0] - pts[:, 1]
    return np.array([pts[s.argmin()], pts[d.argmax()], pts[s.argmax()], pts[d.argmin()]], dtype=np.float32)


def _rect_quad(rect) -> tuple[np.ndarray, float, float]:
    (cx, cy), (w, h), angle = rect
    if w < h:
        w, h = h, w
        angle += 90
    # Plates in gate frames are near-horizontal; a steep rectangle is a pole or a grille bar.
    while angle > 45:
        angle -= 180
    while angle < -45:
        angle += 180
    quad = cv2.boxPoints(((cx, cy), (w, h), angle))
    return order_quad(quad), w, h


def _sort_corners(pts: np.ndarray) -> np.ndarray:
    """tl, tr, br, bl for a near-horizontal quad, robust to strong shear: split left/right by x, then by y."""
    pts = np.asarray(pts, dtype=np.float32).reshape(4, 2)
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1])]
    right = by_x[2:][np.argsort(by_x[2:, 1])]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def quad_size(quad: np.ndarray) -> tuple[float, float]:
    """Mean width (top and bottom edges) and mean height (left and right edges) of an ordered quad."""
    tl, tr, br, bl = quad
    w = (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2.0
    h = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2.0
    return float(w), float(h)


def fit_quad(contour: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Four-corner fit of a plate blob: the convex hull simplified to 4 vertices when that describes it well
    (sheared and perspective-distorted plates are parallelograms/trapezoids, not rectangles), else the
    rotated rectangle. Returns (quad tl,tr,br,bl, width, height)."""
    rect_quad, rw, rh = _rect_quad(cv2.minAreaRect(contour))
    hull = cv2.convexHull(contour)
    hull_area = float(cv2.contourArea(hull))
    if len(hull) < 4 or hull_area <= 0:
        return rect_quad, rw, rh
    peri = cv2.arcLength(hull, True)
    approx = None
    for eps in (0.02, 0.035, 0.05, 0.07, 0.09):
        a = cv2.approxPolyDP(hull, eps * peri, True)
        if len(a) == 4:
            approx = a
            break
        if len(a) < 4:
            break
    if approx is None or not cv2.isContourConvex(approx):
        return rect_quad, rw, rh
    quad = _sort_corners(approx)
    qa = float(cv2.contourArea(quad))
    # The 4-gon must cover the hull (not cut a corner off) and be tighter than the rectangle.
    if not 0.88 <= qa / hull_area <= 1.12 or qa > rw * rh * 1.02:
        return rect_quad, rw, rh
    tl, tr, br, bl = quad
    top, bottom = tr - tl, br - bl
    left, right = bl - tl, br - tr
    # Top and bottom edges roughly parallel and near-horizontal; sides may lean (shear) but not lie down.
    ang = lambda v: float(np.degrees(np.arctan2(v[1], v[0])))  # noqa: E731
    if abs(ang(top) - ang(bottom)) > 20 or abs(ang(top)) > 45:
        return rect_quad, rw, rh
    if min(abs(ang(left)), abs(ang(right))) < 35:
        return rect_quad, rw, rh
    qw, qh = quad_size(quad)
    if qh < 1:
        return rect_quad, rw, rh
    return quad, qw, qh


def _edges(gray: np.ndarray) -> np.ndarray:
    sob = cv2.Sobel(gray, cv2.CV_16S, 1, 0, ksize=3)
    sob = cv2.convertScaleAbs(sob)
    _, binary = cv2.threshold(sob, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return binary


def find_candidates(frame: np.ndarray, max_candidates: int = 8) -> list[Candidate]:
    """Plate-like regions, best first. Works on a downscaled copy; quads are returned in frame pixels."""
    H, W = frame.shape[:2]
    # Small frames are enlarged to the working size (tiny plates then survive the size filters and the
    # closing kernels); large ones shrunk.
    scale = min(MAX_UPSCALE, WORK_SIDE / max(H, W))
    if abs(scale - 1.0) < 0.05:
        scale, small = 1.0, frame
    else:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(frame, (int(W * scale), int(H * scale)), interpolation=interp)
    h, w = small.shape[:2]
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    edges = _edges(gray)
    edge_int = cv2.integral(edges // 255)

    # Character strokes on a plate make a row of vertical edges; closing them horizontally gives a plate blob.
    kx = max(9, int(w / 60)) | 1
    ky = max(3, int(h / 180)) | 1
    close_k = cv2.getStructuringElement(cv2.MORPH_RECT, (kx, ky))
    open_k = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))

    masks: list[tuple[str, np.ndarray]] = []
    for name, lo, hi in _MASKS:
        m = cv2.inRange(hsv, lo, hi)
        # Characters punch holes in the colour mask; close them before taking contours.
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, close_k)
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, open_k)
        masks.append((name, m))
    e = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, close_k)
    e = cv2.morphologyEx(e, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (kx // 2 | 1, ky)))
    masks.append(("edges", e))

    min_area = max(250.0, h * w * 0.0004)
    max_area = h * w * 0.25
    found: list[Candidate] = []
    for name, m in masks:
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for c in contours:
            area = cv2.contourArea(c)
            if area < min_area * 0.6 or area > max_area:
                continue
            # Colour blobs follow the plate's outline: fit four corners. Edge blobs are smeared by the closing.
            quad, rw, rh = fit_quad(c) if name != "edges" else _rect_quad(cv2.minAreaRect(c))
            if rh < 8 or rw * rh < min_area:
                continue
            top = quad[1] - quad[0]
            qw, qh = quad_size(quad)
            # Long side steeper than ~35° (or upright): a pole or a grille bar, not a plate.
            if abs(top[1]) > abs(top[0]) * 0.7 or qw < qh:
                continue
            aspect = rw / rh
            if not 1.4 <= aspect <= 7.5:
                continue
            fill = min(1.0, area / (rw * rh))
            if fill < 0.45:
                continue
            x0, y0 = np.clip(quad.min(0).astype(int), 0, [w - 1, h - 1])
            x1, y1 = np.clip(quad.max(0).astype(int), 0, [w - 1, h - 1])
            if x1 - x0 < 8 or y1 - y0 < 4:
                continue
            dens = (edge_int[y1, x1] - edge_int[y0, x1] - edge_int[y1, x0] + edge_int[y0, x0]) / float(
                (x1 - x0) * (y1 - y0)
            )
            # A plate is stroke-dense but not solid texture (grilles, foliage).
            if dens < 0.08 or dens > 0.75:
                continue
            if name == "white" and dens < 0.15:
                continue
            # Closest to the 440×140 single-row (3.14) or 440×220 double-row (2.0) shapes scores best.
            shape = min(abs(np.log(aspect / 3.14)), abs(np.log(aspect / 2.0)) + 0.15)
            score = fill * min(dens / 0.25, 1.5) * float(np.exp(-2.0 * shape))
            score *= {"edges": 0.8, "white": 0.6}.get(name, 1.0)
            found.append(Candidate(quad / scale, name, float(score), float(aspect)))

    found.sort(key=lambda c: -c.score)
    kept: list[Candidate] = []
    for c in found:
        if all(_iou(c.box, k.box) < 0.5 for k in kept):
            kept.append(c)
        if len(kept) >= max_candidates:
            break
    return kept


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    ix = max(0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    iy = max(0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def rectify(frame: np.ndarray, quad: np.ndarray, pad_x: float = 0.06, pad_y: float = 0.14,
            out_h: int = 64) -> np.ndarray:
    """Perspective-correct the quad (with a margin so edge characters are not cut) to a fronto-parallel crop."""
    q = order_quad(quad)
    tl, tr, br, bl = q
    wv = (tr - tl + br - bl) / 2.0
    hv = (bl - tl + br - tr) / 2.0
    q2 = np.array(
        [tl - wv * pad_x - hv * pad_y, tr + wv * pad_x - hv * pad_y, br + wv * pad_x + hv * pad_y,
         bl - wv * pad_x + hv * pad_y],
        dtype=np.float32,
    )
    width = float(np.linalg.norm(wv)) * (1 + 2 * pad_x)
    height = float(np.linalg.norm(hv)) * (1 + 2 * pad_y)
    out_w = int(np.clip(round(out_h * width / max(height, 1.0)), 16, out_h * 10))
    dst = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], dtype=np.float32)
    M = cv2.getPerspectiveTransform(q2, dst)
    return cv2.warpPerspective(frame, M, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


# -- second pass: straighten and tighten a first crop --------------------------------------------------------
_REFINE_H = 64
_SHEARS = np.linspace(-0.6, 0.6, 13)


def _pad_quad(quad: np.ndarray, pad_x: float, pad_y: float) -> np.ndarray:
    tl, tr, br, bl = order_quad(quad)
    wv = (tr - tl + br - bl) / 2.0
    hv = (bl - tl + br - tr) / 2.0
    return np.array([tl - wv * pad_x - hv * pad_y, tr + wv * pad_x - hv * pad_y, br + wv * pad_x + hv * pad_y,
                     bl - wv * pad_x + hv * pad_y], dtype=np.float32)


def run_around(on: np.ndarray, c: int) -> tuple[int, int]:
    """First and last index of the run of true values in ``on`` that holds index ``c`` (a profile's band)."""
    lo = c
    while lo > 0 and on[lo - 1]:
        lo -= 1
    hi = c
    while hi < len(on) - 1 and on[hi + 1]:
        hi += 1
    return lo, hi


def refine_quad(frame: np.ndarray, quad: np.ndarray, pad_x: float = 0.10, pad_y: float = 0.45) -> np.ndarray | None:
    """Re-localise the characters inside a generous first crop and return a tighter, de-sheared quad.

    Colour-agnostic: works on the vertical-stroke edge map, so dark and washed-out plates refine too. The
    character band is the run of rows dense in vertical edges; the shear is the one that makes the strokes'
    column projection sharpest (upright strokes stack). Returns None when nothing plate-like is found.
    """
    q = _pad_quad(quad, pad_x, pad_y)
    w, h = quad_size(order_quad(quad))
    if h < 4:
        return None
    out_h = _REFINE_H
    out_w = int(np.clip(round(out_h * w * (1 + 2 * pad_x) / (h * (1 + 2 * pad_y))), 32, out_h * 8))
    dst = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], dtype=np.float32)
    M = cv2.getPerspectiveTransform(q, dst)
    crop = cv2.warpPerspective(frame, M, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    gray = cv2.equalizeHist(gray)
    sob = np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3))
    thr = max(float(np.percentile(sob, 80)), 1.0)
    strokes = (sob >= thr).astype(np.float32)

    def band(st: np.ndarray) -> tuple[int, int] | None:
        rows = cv2.blur(st, (1, 3)).mean(1) if st.shape[0] > 3 else st.mean(1)
        rows = np.convolve(rows, np.ones(3) / 3, mode="same")
        peak = float(rows[out_h // 4 : 3 * out_h // 4].max())
        if peak < 0.12:
            return None
        on = rows >= peak * 0.45
        c = int(np.argmax(rows[out_h // 4 : 3 * out_h // 4])) + out_h // 4
        return run_around(on, c)

    b = band(strokes)
    if b is None:
        return None
    y0, y1 = b
    yc = (y0 + y1) / 2.0
    # Shear: x' = x + s * (y - yc). Score only the band rows.
    best_s, best_score = 0.0, -1.0
    sub = strokes[y0 : y1 + 1]
    ys = np.arange(y0, y1 + 1, dtype=np.float32) - yc
    for s in _SHEARS:
        A = np.array([[1, s, -s * (y0 - yc)], [0, 1, 0]], dtype=np.float32)  # row 0 of sub is at y0
        A[0, 2] = -s * (y0 - yc)
        warped = cv2.warpAffine(sub, A, (out_w, sub.shape[0]), flags=cv2.INTER_NEAREST)
        col = warped.sum(0)
        score = float((col * col).sum())
        if score > best_score:
            best_s, best_score = float(s), score
    del ys
    # After de-shearing, re-measure the band (it is tighter once strokes stand upright) and the x extent.
    A = np.array([[1, best_s, -best_s * yc], [0, 1, 0]], dtype=np.float32)
    straight = cv2.warpAffine(strokes, A, (out_w, out_h), flags=cv2.INTER_NEAREST)
    b2 = band(straight)
    if b2 is not None:
        y0, y1 = b2
    height = y1 - y0 + 1
    if height < out_h * 0.18 or height > out_h * 0.95:
        return None
    cols = straight[y0 : y1 + 1].mean(0)
    cols = np.convolve(cols, np.ones(5) / 5, mode="same")
    xs = np.nonzero(cols > 0.08)[0]
    if len(xs) < 2:
        return None
    x0, x1 = float(xs[0]), float(xs[-1])
    if (x1 - x0) / height < 1.2:
        return None
    # Characters fill about 80% of a plate's height: grow the band back to the plate's edges.
    grow = height * 0.12
    ya, yb = y0 - grow, y1 + grow
    # Points in the de-sheared crop → the sheared crop (x = x' - s*(y - yc)) → frame (inverse homography).
    pts = np.array([[x0 - best_s * (ya - yc), ya], [x1 - best_s * (ya - yc), ya],
                    [x1 - best_s * (yb - yc), yb], [x0 - best_s * (yb - yc), yb]], dtype=np.float32)
    back = cv2.perspectiveTransform(pts[None], np.linalg.inv(M))[0]
    return back.astype(np.float32)
