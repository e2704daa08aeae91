"""Turns a clean plate into what a gate camera and the localiser hand the recogniser.

Steps: optional holder frame, bolts, dirt and shadow on the plate; the plate placed in a scene (car body
colours, clutter) under a random perspective; a crop taken from the plate's corners jittered like a real
localiser's and padded like ``locate.rectify`` (6% of the width, 14% of the height); then the camera: small
size, defocus or motion blur, noise, brightness, night/IR or over-exposure, JPEG at q30-90.
"""

from __future__ import annotations

import cv2
import numpy as np

PAD_X, PAD_Y = 0.06, 0.14
# Augmentation styles (the data version a chunk was rendered with). Style 4 made 2026.12.01-3's data and is kept
# draw for draw, so that data can still be rebuilt; style 5 adds what that model was brittle to on plates it had
# not seen: deep dealer strips under holder frames, mud splashes, steeper views, gamma-dark night, IR fill light,
# blooming over-exposure and harder JPEG. Its crops are cut from the plate as style 4's are (crop_quad): loose crops
# with car body round the plate are not among them. Style 6 crops are style 5's of plates that may be drawn in a
# system font (render.render_plate ``fonts``): the camera side is the same. Style 7 is style 6 with more fonts
# (glyphs.MORE_FONTS) on more of the plates (render.FONT_PLATES_7). Style 8 is style 7 whose double-row plates
# take the single-row glyph variety in both rows (render.render_plate ``rows_variety``).
STYLES = (4, 5, 6, 7, 8)


def _frame_and_bolts(img: np.ndarray, rng: np.random.Generator, scale: float = 1.0,
                     style: int = 4) -> tuple[np.ndarray, tuple[int, int]]:
    """The plate with a holder frame or bolts, and where the plate's top-left corner now is."""
    h, w = img.shape[:2]
    if rng.random() < 0.35:
        # A dealer's holder frame round the plate: a band of another colour, often with a text strip below.
        t = max(2, int(rng.integers(6, 16) * scale))
        colour = tuple(int(c) for c in rng.choice([[30, 30, 30], [200, 200, 200], [150, 150, 160], [40, 40, 120]]))
        # Style 5: half the frames carry a dealer's strip under the plate, 12-22% of the plate's height deep —
        # it moves the plate up in a loose crop, and with it a double-row plate's row cut.
        strip = int(h * rng.uniform(0.12, 0.22)) if style >= 5 and rng.random() < 0.5 else 0
        framed = np.empty((h + 2 * t + strip, w + 2 * t + 0, 3), np.uint8)
        framed[:] = colour
        framed[t:t + h, t:t + w] = img
        if rng.random() < 0.5:
            step = max(4, int(rng.integers(25, 45) * scale))
            y0, y1 = (h + t + 1, h + 2 * t - 1) if not strip else (h + t + strip // 4, h + t + strip - strip // 4)
            for x in range(t + step, w, step):
                cv2.rectangle(framed, (x, y0), (x + max(2, int(12 * scale)), y1), (255 - colour[0],) * 3, -1)
        return framed, (t, t)
    if rng.random() < 0.5:
        for x in (int(110 * scale), w - int(110 * scale)):
            for y in (int(12 * scale), h - int(12 * scale)) if rng.random() < 0.5 else (int(12 * scale),):
                c = int(rng.integers(120, 230))
                cv2.circle(img, (x, y), max(1, int(rng.integers(5, 9) * scale)), (c, c, c), -1, cv2.LINE_AA)
    return img, (0, 0)


def _dirt(img: np.ndarray, rng: np.random.Generator, style: int = 4) -> np.ndarray:
    out = img.astype(np.float32)
    h, w = img.shape[:2]
    if rng.random() < (0.5 if style >= 5 else 0.3):
        mask = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(3, 25))):
            if style >= 5:
                # Mud thrown up by the wheels: splashes, mostly on the lower part of the plate.
                c = (int(rng.integers(0, w)), int(h * rng.uniform(0.2, 1.0)))
                axes = (max(1, int(rng.integers(2, 30) * w / 440)), max(1, int(rng.integers(2, 16) * w / 440)))
                cv2.ellipse(mask, c, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0.2, 0.8)), -1)
                continue
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.circle(mask, c, max(1, int(rng.integers(2, 18) * w / 440)), float(rng.uniform(0.2, 0.8)), -1)
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, 3 * w / 440))[:, :, None]
        mud = np.array(rng.choice([[40, 60, 80], [60, 80, 100], [30, 30, 30]]), np.float32)
        out = out * (1 - mask) + mud * mask
    if rng.random() < 0.2:
        # Hard shadow across part of the plate (a bumper, a tree).
        x = int(rng.integers(0, w))
        poly = np.array([[x, 0], [w, 0], [w, h], [max(0, x - int(rng.integers(0, w // 2))), h]], np.int32)
        m = np.zeros((h, w), np.float32)
        cv2.fillPoly(m, [poly], 1.0)
        out *= 1 - m[:, :, None] * rng.uniform(0.3, 0.6)
    return np.clip(out, 0, 255).astype(np.uint8)


def _scene(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    w, h = size
    # Built at a quarter of the size and enlarged: a smooth car body with clutter, cheap to make.
    sw, sh = max(4, w // 4), max(4, h // 4)
    base = rng.integers(0, 256, 3).astype(np.float32)
    grad = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.2), sh, dtype=np.float32)[:, None, None]
    small = base[None, None, :] * grad + rng.normal(0, rng.uniform(2, 14), (sh, sw, 3)).astype(np.float32)
    scene = cv2.resize(np.clip(small, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
    for _ in range(int(rng.integers(0, 6))):
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(scene, p1, p2, tuple(int(c) for c in rng.integers(0, 256, 3)), int(rng.integers(1, 8)))
    return scene


def crop_quad(quad: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The region a crop is cut from, given the plate quad (tl, tr, br, bl), and its width/height.

    Mostly ``locate.rectify``'s margin at 0.5-1.5x; sometimes cut tight to the corners (a camera's plate
    thumbnail, CCPD's 94x24 crops); sometimes the axis-aligned box round the corners, unrectified, as a
    plate detector's box gives it (a tilted plate stays tilted, with background in the corners).
    """
    tl, tr, br, bl = quad
    wv, hv = (tr - tl + br - bl) / 2, (bl - tl + br - tr) / 2
    r = rng.random()
    if r < 0.15:
        x0, y0 = quad.min(0)
        x1, y1 = quad.max(0)
        m = rng.uniform(0.0, 0.04) * (x1 - x0)
        box = np.float32([[x0 - m, y0 - m], [x1 + m, y0 - m], [x1 + m, y1 + m], [x0 - m, y1 + m]])
        return box, float((x1 - x0 + 2 * m) / max(1.0, y1 - y0 + 2 * m))
    if r < 0.35:
        px, py = PAD_X * rng.uniform(0.0, 0.4), PAD_Y * rng.uniform(0.0, 0.4)
    else:
        px, py = PAD_X * rng.uniform(0.5, 1.5), PAD_Y * rng.uniform(0.5, 1.5)
    padded = np.float32([tl - wv * px - hv * py, tr + wv * px - hv * py, br + wv * px + hv * py,
                         bl - wv * px + hv * py])
    w, h = float(np.linalg.norm(wv)), float(np.linalg.norm(hv))
    return padded, (w * (1 + 2 * px)) / max(1.0, h * (1 + 2 * py))


def loosen(plate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The clean plate with car body round it (6-18% of its width each side, 8-22% of its height above and
    below): the loose crop a camera's plate thumbnail or a detector's box leaves, before ``camera_crop``. Not part
    of any training style; the reader's loose-crop tests and the threshold derivation draw with it."""
    h, w = plate.shape[:2]
    left, right = (int(w * rng.uniform(0.06, 0.18)) for _ in range(2))
    top, bottom = (int(h * rng.uniform(0.08, 0.22)) for _ in range(2))
    body = _scene((w + left + right, h + top + bottom), rng)
    body[top:top + h, left:left + w] = plate
    return body


def camera_crop(plate: np.ndarray, rng: np.random.Generator, hard: float = 1.0, style: int = 4) -> np.ndarray:
    """A localiser's crop of this clean plate as a camera saw it (BGR uint8, a few tens of pixels high)."""
    out_h = int(rng.integers(18, 70))
    # Work at about three times the output size: a camera integrates light, so a small plate is blurred, not
    # aliased, and there is no point composing a 1 px/mm scene for a 30 px crop.
    scale = min(1.0, 3.4 * out_h / plate.shape[0])
    if scale < 1.0:
        plate = cv2.resize(plate, (int(round(plate.shape[1] * scale)), int(round(plate.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
    framed, (ox, oy) = _frame_and_bolts(plate.copy(), rng, scale, style)
    img = _dirt(framed, rng, style)
    h, w = img.shape[:2]
    # Plate corners in a scene three times its size, under a mild random perspective.
    sw, sh = int(w * 1.35), int(h * 1.9)
    cx, cy = sw / 2, sh / 2
    steep = style >= 5
    ang = np.deg2rad(rng.normal(0, 6 if steep else 4) * hard)
    shear = rng.normal(0, 0.08 if steep else 0.06) * hard
    persp = rng.normal(0, 0.08 if steep else 0.05) * hard
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    corners = []
    for x, y in src:
        u, v = x - w / 2, y - h / 2
        u = u + shear * v
        k = 1 + persp * (u / w)
        u, v = u * k, v * k
        corners.append([cx + u * np.cos(ang) - v * np.sin(ang), cy + u * np.sin(ang) + v * np.cos(ang)])
    dst = np.float32(corners)
    M = cv2.getPerspectiveTransform(src, dst)
    scene = _scene((sw, sh), rng)
    # BORDER_TRANSPARENT draws the plate over the scene in place: no alpha mask to blend.
    cv2.warpPerspective(img, M, (sw, sh), dst=scene, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)

    # The frame's plate quad (the holder frame is outside the plate, so its corners move in by the frame).
    fh, fw = plate.shape[:2]
    quad = cv2.perspectiveTransform(np.float32([[[ox, oy], [ox + fw, oy], [ox + fw, oy + fh], [ox, oy + fh]]]), M)[0]
    # A localiser's error: each corner off by a few percent of the plate's size.
    jit = np.float32([fw * 0.03, fh * 0.08]) * hard
    quad = quad + rng.normal(0, 1, quad.shape).astype(np.float32) * jit
    padded, aspect = crop_quad(quad, rng)
    out_w = max(16, int(round(out_h * aspect)))
    big_h = out_h * 3
    big_w = max(16, int(round(big_h * aspect)))
    Mc = cv2.getPerspectiveTransform(padded, np.float32([[0, 0], [big_w, 0], [big_w, big_h], [0, big_h]]))
    crop = cv2.warpPerspective(scene, Mc, (big_w, big_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    crop = cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA)
    return degrade(crop, rng, hard, style)


def _light5(out: np.ndarray, rng: np.random.Generator, hard: float) -> np.ndarray:
    """Style 5's lighting: gamma-dark night, IR fill light, blooming over-exposure, or ordinary daylight."""
    light = rng.random()
    if light < 0.15 * hard:
        # Night: a camera's gamma darkens the mid-tones most; little colour, sensor noise.
        x = np.clip(out, 0, 255) / 255.0
        x = x ** rng.uniform(1.3, 2.1) * rng.uniform(0.35, 0.7)
        gray = x.mean(axis=2, keepdims=True)
        sat = rng.uniform(0.3, 1.0)
        return (x * sat + gray * (1 - sat)) * 255.0 + rng.normal(0, rng.uniform(3, 12), x.shape)
    if light < 0.25 * hard:
        # IR fill light: most of the colour gone, the retro-reflective plate bright.
        gray = out.mean(axis=2, keepdims=True)
        keep = rng.uniform(0.2, 0.6)
        return (out * keep + gray * (1 - keep)) * rng.uniform(1.05, 1.35) + rng.uniform(0, 25)
    if light < 0.38 * hard:
        # Headlights or low sun: washed out, bright areas bleeding into the strokes.
        x = out * rng.uniform(1.4, 2.1) + rng.uniform(10, 50)
        return 0.7 * x + 0.3 * cv2.GaussianBlur(x, (0, 0), float(rng.uniform(1.5, 3.5)))
    return out * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30)


def degrade(img: np.ndarray, rng: np.random.Generator, hard: float = 1.0, style: int = 4) -> np.ndarray:
    out = img.astype(np.float32)
    r = rng.random()
    if r < 0.3 * hard:
        k = int(rng.integers(3, 8))
        kern = np.zeros((k, k), np.float32)
        cv2.line(kern, (0, k // 2), (k - 1, k // 2), 1.0, 1)
        rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), float(rng.uniform(-30, 30)), 1.0)
        kern = cv2.warpAffine(kern, rot, (k, k))
        out = cv2.filter2D(out, -1, kern / max(kern.sum(), 1e-6))
    elif r < 0.65:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.3, 1.3 * hard + 0.3)))
    if rng.random() < 0.5:
        # White balance and colour cast differ by camera and by light (sodium lamps, dusk, IR cut filters).
        out = out * (1.0 + rng.uniform(-0.18, 0.18, 3)).astype(np.float32)
    if style >= 5:
        out = _light5(out, rng, hard)
    else:
        light = rng.random()
        if light < 0.15 * hard:
            # Night / IR: dark, low contrast, desaturated, noisy.
            gray = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
            sat = rng.uniform(0.0, 0.6)
            out = out * sat + gray[:, :, None] * (1 - sat)
            out = out * rng.uniform(0.25, 0.6) + rng.uniform(0, 20)
        elif light < 0.3 * hard:
            # Over-exposure: headlights or low sun wash the plate out.
            out = out * rng.uniform(1.3, 2.2) + rng.uniform(20, 70)
        else:
            out = out * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30)
    out = out + rng.normal(0, rng.uniform(0, 8 * hard + 1), out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    # Gate cameras stream at modest JPEG quality; style 5 compresses more of the crops, and harder.
    if rng.random() < (0.9 if style >= 5 else 0.8):
        q = int(rng.integers(25, 86) if style >= 5 else rng.integers(30, 91))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out
