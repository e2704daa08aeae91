"""Fast plate candidates with OpenCV: colour masks, vertical-edge density, contour geometry, rectification."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORK_SIDE = 1024  # localisation runs on a frame no longer than this; crops come from the full frame

# (name, lower HSV, upper HSV): plate backgrounds. White is searched too but only kept with dense edges.
_MASKS = (
    ("blue", (95, 70, 45), (130, 255, 255)),
    ("yellow", (10, 70, 70), (34, 255, 255)),
    ("green", (35, 35, 60), (94, 255, 255)),
    ("white", (0, 0, 160), (180, 50, 255)),
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


def _edges(gray: np.ndarray) -> np.ndarray:
    sob = cv2.Sobel(gray, cv2.CV_16S, 1, 0, ksize=3)
    sob = cv2.convertScaleAbs(sob)
    _, binary = cv2.threshold(sob, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return binary


def find_candidates(frame: np.ndarray, max_candidates: int = 8) -> list[Candidate]:
    """Plate-like regions, best first. Works on a downscaled copy; quads are returned in frame pixels."""
    H, W = frame.shape[:2]
    scale = min(1.0, WORK_SIDE / max(H, W))
    small = cv2.resize(frame, (int(W * scale), int(H * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else frame
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
            rect = cv2.minAreaRect(c)
            quad, rw, rh = _rect_quad(rect)
            if rh < 8 or rw * rh < min_area:
                continue
            aspect = rw / rh
            if not 1.4 <= aspect <= 7.5:
                continue
            fill = area / (rw * rh)
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
