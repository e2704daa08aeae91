"""CCPD province swap: another province's glyph painted into a real photo's province box, before the crop is cut.

CCPD is 98% 皖, so the only real plates the recogniser sees carry one province and it leans to 皖 on any
real-looking blurred plate. Here the province glyph of a CCPD photo is replaced in the photo itself: the plate's
four labelled corners give the homography from the GA 36 plate (440x140 mm, first character 45x90 mm at
15.5 mm from the left, 25 mm from the top: render.SINGLE_X) into the photo; in that plate frame the original
glyph is found and painted over with the plate's own background (inpainted, so its light gradient stays), the
new glyph is drawn in the plate's own ink level (robust percentiles measured in the box), warped back by the
same homography, blurred to the original's sharpness and given the photo's noise. Only pixels inside the
province box (``BOX_MM``, mapped into the photo) change; the crop is then cut and degraded as any CCPD crop is.
Pure numpy/OpenCV.
"""

from __future__ import annotations

import cv2
import numpy as np

from plate_reader import plates
from plate_reader.training.glyphs import GlyphBank
from plate_reader.training.render import SINGLE_X

PLATE_MM = (440.0, 140.0)
# The province slot (GA 36 single row) and the region that may change round it: the gap to the authority
# letter (72.5 mm) is 12 mm and the plate's frame line is 5-10 mm from the edges, so a few millimetres of
# margin absorb the corners' labelling error without reaching the letter or the frame.
SLOT_MM = (SINGLE_X[0], 25.0, 45.0, 90.0)             # x, y, w, h
BOX_MM = (SINGLE_X[0] - 6.0, 16.0, 45.0 + 11.0, 108.0)  # x 9.5-65.5, y 16-124
# Glyph sets a replacement is drawn from, with their weights: GA 36 drawings, characters cut from real plates
# (wzh191920: real stroke widths and shapes) and huangxinping's alternative drawings.
SETS = (("single", 0.5), ("real", 0.35), ("alt", 0.15))
PX_PER_MM = 1.5
BLURS = (0.0, 0.4, 0.7, 1.0, 1.4, 1.9, 2.5)


def plate_homography(quad: np.ndarray) -> np.ndarray:
    """Plate millimetres -> photo pixels, from the corners tl, tr, br, bl."""
    w, h = PLATE_MM
    return cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), np.float32(quad))


def box_polygon(quad: np.ndarray) -> np.ndarray:
    """The province box (BOX_MM) in photo pixels, [4, 2]: nothing outside it is changed."""
    x, y, w, h = BOX_MM
    pts = np.float32([[[x, y], [x + w, y], [x + w, y + h], [x, y + h]]])
    return cv2.perspectiveTransform(pts, plate_homography(quad))[0]


def _glyph(bank: GlyphBank, rng: np.random.Generator, ch: str) -> tuple[np.ndarray, bool]:
    names = [s for s, _ in SETS if bank.has(s, ch)]
    if not names:
        raise KeyError(f"no glyph for {ch!r}")
    p = np.array([dict(SETS)[s] for s in names])
    return bank.pick(rng, str(rng.choice(names, p=p / p.sum())), ch)


def _sharpness(gray: np.ndarray, mask: np.ndarray) -> float:
    """Edge energy relative to contrast inside ``mask``: blur lowers it, contrast does not change it."""
    lap = cv2.Laplacian(gray, cv2.CV_32F)
    vals = gray[mask]
    contrast = float(np.percentile(vals, 95) - np.percentile(vals, 5)) if vals.size else 0.0
    return float(lap[mask].var()) / max(contrast, 1.0) ** 2


def _ink_mask(gray: np.ndarray) -> np.ndarray:
    # Blue plates carry light characters; Otsu splits the box into ink and plate background.
    g = cv2.GaussianBlur(gray, (0, 0), 1.0).astype(np.uint8)
    _, m = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return m > 0


def _glyph_bbox(ink: np.ndarray, s: float) -> tuple[float, float, float, float] | None:
    """The original character's ink box in the rectified box, in mm relative to BOX_MM; None if unclear."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    keep = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= 6 * s * s]
    if not keep:
        return None
    x0 = min(stats[i, cv2.CC_STAT_LEFT] for i in keep)
    y0 = min(stats[i, cv2.CC_STAT_TOP] for i in keep)
    x1 = max(stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH] for i in keep)
    y1 = max(stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT] for i in keep)
    return x0 / s, y0 / s, (x1 - x0) / s, (y1 - y0) / s


def swap_province(photo: np.ndarray, quad: np.ndarray, plate_text: str, bank: GlyphBank,
                  rng: np.random.Generator, new: str | None = None) -> tuple[np.ndarray, str]:
    """The photo with the blue plate's province glyph replaced, and the new plate text.

    ``new`` (default: any other province, uniformly) must have a glyph in the bank's sets. The photo is not
    modified; pixels outside ``box_polygon(quad)`` of the returned copy equal the original's.
    """
    if new is None:
        others = [p for p in plates.PROVINCES if p != plate_text[0] and any(bank.has(s, p) for s, _ in SETS)]
        new = str(rng.choice(others))
    s = PX_PER_MM
    bx, by, bw, bh = BOX_MM
    W, H = int(round(bw * s)), int(round(bh * s))
    # Box pixels -> photo pixels.
    to_mm = np.float32([[1 / s, 0, bx], [0, 1 / s, by], [0, 0, 1]])
    M = plate_homography(quad) @ to_mm
    box = cv2.warpPerspective(photo, np.linalg.inv(M), (W, H), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    gray = cv2.cvtColor(box.astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
    ink = _ink_mask(gray)
    # Only the slot's neighbourhood holds the character; ink at the box's rim is the frame or a rivet.
    rim = np.zeros_like(ink)
    m = int(round(2.5 * s))
    rim[m:-m, m:-m] = True
    ink &= rim
    if ink.mean() < 0.05 or ink.mean() > 0.6:
        ink = np.zeros_like(ink)
    bg_px, ink_px = box[~ink], box[ink]
    bg_level = np.percentile(bg_px, 50, axis=0) if len(bg_px) else np.float32([150, 60, 10])
    ink_level = np.percentile(ink_px, 80, axis=0) if len(ink_px) > 20 else np.float32([230, 230, 230])

    # The plate without its character: inpainted from the background round it (keeps light gradients).
    hole = cv2.dilate(ink.astype(np.uint8) * 255, np.ones((5, 5), np.uint8), iterations=max(1, int(s)))
    clean = cv2.inpaint(np.clip(box, 0, 255).astype(np.uint8), hole, 3, cv2.INPAINT_TELEA).astype(np.float32)
    clean = cv2.GaussianBlur(clean, (0, 0), 2.0 * s) * (hole[:, :, None] > 0) + clean * (hole[:, :, None] == 0)

    # Where the new glyph goes: the nominal slot, moved and scaled to where the original character was found.
    sx, sy, sw, sh = SLOT_MM[0] - bx, SLOT_MM[1] - by, SLOT_MM[2], SLOT_MM[3]
    found = _glyph_bbox(ink, s)
    if found is not None:
        fx, fy, fw, fh = found
        if 0.8 * sh <= fh <= 1.15 * sh and fw >= 0.45 * sw:
            scale = fh / sh
            cx = float(np.clip(fx + fw / 2, sx + sw / 2 - 6, sx + sw / 2 + 6))
            cy = float(np.clip(fy + fh / 2, sy + sh / 2 - 6, sy + sh / 2 + 6))
            sw, sh = sw * scale, sh * scale
            sx, sy = cx - sw / 2, cy - sh / 2
    mask, tight = _glyph(bank, rng, new)
    gw, gh = sw * rng.uniform(0.94, 1.04), sh * rng.uniform(0.94, 1.04)
    if tight:
        gw = min(gw, mask.shape[1] * gh / mask.shape[0])
    x0, y0 = int(round((sx + (sw - gw) / 2) * s)), int(round((sy + (sh - gh) / 2) * s))
    gwp, ghp = max(2, int(round(gw * s))), max(2, int(round(gh * s)))
    alpha = np.zeros((H, W), np.float32)
    g = cv2.resize(mask, (gwp, ghp), interpolation=cv2.INTER_LINEAR)
    if gwp > 2 * mask.shape[1]:
        # A small cut character (20x20) enlarged: smooth its steps away as a lens would.
        g = cv2.GaussianBlur(g, (0, 0), 0.4 * gwp / mask.shape[1])
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(W, x0 + gwp), min(H, y0 + ghp)
    if xb > xa and yb > ya:
        alpha[ya:yb, xa:xb] = g[ya - y0: yb - y0, xa - x0: xb - x0]
    # The ink follows the plate's light: the measured ink level scaled by the local background brightness.
    # One brightness ratio for all channels: a per-channel one swings the blue plate's dim red channel
    # and fringes the strokes with colour.
    shade = clean.mean(axis=2, keepdims=True) / max(float(bg_level.mean()), 1.0)
    drawn = clean * (1 - alpha[:, :, None]) + ink_level * np.clip(shade, 0.6, 1.5) * alpha[:, :, None]

    # Back into the photo by the same homography, warped only onto the box's bounding rectangle (plus a
    # margin for the blur); a feathered edge inside the box so no seam shows.
    ph, pw = photo.shape[:2]
    feather = np.zeros((H, W), np.float32)
    e = int(round(1.5 * s))
    feather[e:-e, e:-e] = 1.0
    feather = cv2.GaussianBlur(feather, (0, 0), max(0.5, e / 2)) * (feather > 0)
    poly = cv2.perspectiveTransform(np.float32([[[0, 0], [W, 0], [W, H], [0, H]]]), M)[0]
    xa, ya = (max(0, int(np.floor(v)) - 8) for v in poly.min(0))
    xb, yb = min(pw, int(np.ceil(poly[:, 0].max())) + 9), min(ph, int(np.ceil(poly[:, 1].max())) + 9)
    if xb <= xa or yb <= ya:
        return photo.copy(), new + plate_text[1:]
    Mr = np.float32([[1, 0, -xa], [0, 1, -ya], [0, 0, 1]]) @ M
    size = (xb - xa, yb - ya)
    new_patch = cv2.warpPerspective(drawn, Mr, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    wgt = cv2.warpPerspective(feather, Mr, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    region = wgt > 0
    orig = photo[ya:yb, xa:xb].astype(np.float32)
    inside = wgt > 0.99
    # Sharpness: blur the new glyph until its edge energy matches the original character's.
    og = cv2.cvtColor(orig.astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
    target = _sharpness(og, inside)
    best, best_d = new_patch, None
    for sigma in BLURS:
        cand = cv2.GaussianBlur(new_patch, (0, 0), sigma) if sigma else new_patch
        cg = cv2.cvtColor(np.clip(cand, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
        d = abs(np.log((_sharpness(cg, inside) + 1e-6) / (target + 1e-6)))
        if best_d is None or d < best_d:
            best, best_d = cand, d
    # The photo's noise: the high-pass residual of the original box, which the smooth drawing lacks.
    # Measured on the plate background only: the character's edges are not noise.
    ink_p = cv2.warpPerspective(cv2.dilate(ink.astype(np.uint8), np.ones((5, 5), np.uint8)), Mr, size,
                                flags=cv2.INTER_NEAREST) > 0
    resid = og - cv2.GaussianBlur(og, (0, 0), 1.0)
    flat = inside & ~ink_p
    sigma_n = 1.4826 * float(np.median(np.abs(resid[flat]))) if flat.sum() > 20 else 0.0
    best = best + rng.normal(0, sigma_n, best.shape).astype(np.float32)
    out = photo.copy()
    mixed = orig * (1 - wgt[:, :, None]) + best * wgt[:, :, None]
    out[ya:yb, xa:xb] = np.where(region[:, :, None], np.clip(mixed, 0, 255).round(), orig).astype(np.uint8)
    return out, new + plate_text[1:]
