"""Synthetic plates and gate frames for tests and the benchmark: every GA 36 kind, incl. 8-character green,
yellow-green large new-energy and double-row yellow rear plates.

Rendered with a subset of Noto Sans CJK SC (SIL OFL 1.1) shipped in ``plate_reader/fonts``. Needs Pillow (the
``dev`` extra); the reader itself does not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from . import plates

FONT_PATH = Path(__file__).with_name("fonts") / "NotoSansCJKsc-Bold-plates.otf"

# BGR colours of plate backgrounds and characters.
_BLUE, _YELLOW, _WHITE, _BLACK = (160, 60, 10), (20, 190, 240), (245, 245, 245), (20, 20, 20)
_GREEN, _LIGHT = (80, 200, 60), (235, 250, 235)
_RED = (30, 30, 210)


@dataclass(frozen=True)
class SynthSample:
    name: str
    plate: str
    color: str
    kind: str
    double_row: bool
    image: np.ndarray  # BGR frame


@lru_cache(maxsize=8)
def _font(size: int):
    from PIL import ImageFont

    if not FONT_PATH.is_file():
        raise FileNotFoundError(f"CJK font subset missing: {FONT_PATH}")
    return ImageFont.truetype(str(FONT_PATH), size)


def _draw_chars(img: np.ndarray, chars: str, box: tuple[int, int, int, int], colors: list[tuple[int, int, int]],
                size: int, dot_after: int | None = None) -> np.ndarray:
    """Draw chars evenly across box (x, y, w, h); colours are BGR per char."""
    from PIL import Image, ImageDraw

    pil = Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    draw = ImageDraw.Draw(pil)
    font = _font(size)
    x, y, w, h = box
    n = len(chars) + (1 if dot_after is not None else 0) * 0.4
    step = w / n
    cx = x
    for i, ch in enumerate(chars):
        b, g, r = colors[i]
        cell = step
        left, top, right, bottom = draw.textbbox((0, 0), ch, font=font)
        cw, chh = right - left, bottom - top
        if ch.isascii():
            # Plate Latin glyphs are condensed: draw wide then squeeze into the cell.
            tmp = Image.new("L", (cw + 4, chh + 4), 0)
            ImageDraw.Draw(tmp).text((2 - left, 2 - top), ch, font=font, fill=255)
            tw = int(min(cell * 0.8, cw))
            tmp = tmp.resize((max(tw, 1), int(h * 0.9)))
            color_img = Image.new("RGB", tmp.size, (r, g, b))
            pil.paste(color_img, (int(cx + (cell - tmp.size[0]) / 2), int(y + h * 0.05)), tmp)
        else:
            tmp = Image.new("L", (cw + 4, chh + 4), 0)
            ImageDraw.Draw(tmp).text((2 - left, 2 - top), ch, font=font, fill=255)
            tmp = tmp.resize((int(cell * 0.85), int(h * 0.9)))
            color_img = Image.new("RGB", tmp.size, (r, g, b))
            pil.paste(color_img, (int(cx + cell * 0.075), int(y + h * 0.05)), tmp)
        cx += cell
        if dot_after is not None and i == dot_after:
            draw.ellipse([cx + step * 0.1, y + h * 0.45, cx + step * 0.3, y + h * 0.55], fill=(r, g, b))
            cx += step * 0.4
    return cv2.cvtColor(np.asarray(pil), cv2.COLOR_RGB2BGR)


def render_plate(text: str, color: str, double_row: bool = False) -> np.ndarray:
    """A fronto-parallel plate image (BGR) at about 3 px per mm."""
    text = plates.normalize(text)
    if double_row:
        w, h = 440, 220
    else:
        w, h = (480, 140) if len(text) == 8 else (440, 140)
    if color == "green":
        # Small new-energy plates fade from near-white at the top to green at the bottom.
        t = np.linspace(0, 1, h)[:, None, None]
        img = (np.array(_LIGHT) * (1 - t) + np.array(_GREEN) * t) * np.ones((h, w, 3))
    elif color == "yellow-green":
        img = np.empty((h, w, 3))
        img[:] = _GREEN
        img[:, : int(w * 0.3)] = _YELLOW
    else:
        img = np.empty((h, w, 3))
        img[:] = {"blue": _BLUE, "yellow": _YELLOW, "white": _WHITE, "black": _BLACK}[color]
    img = img.astype(np.uint8)
    fg = _WHITE if color in ("blue", "black") else _BLACK
    cv2.rectangle(img, (5, 5), (w - 6, h - 6), fg, 3)
    colors = [fg] * len(text)
    if text[-1] == "警":
        colors[-1] = _RED
    if double_row:
        img = _draw_chars(img, text[:2], (130, 14, 180, 60), colors[:2], 56)
        img = _draw_chars(img, text[2:], (24, 90, w - 48, 112), colors[2:], 100)
    else:
        img = _draw_chars(img, text, (18, 18, w - 36, h - 36), colors, 90, dot_after=1)
    return img


def place_in_frame(plate_img: np.ndarray, rng: random.Random, size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    """Put a plate on a car-like background with perspective, blur, noise and JPEG artefacts."""
    W, H = size
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    frame = np.empty((H, W, 3), np.uint8)
    frame[:] = (rng.randrange(60, 200), rng.randrange(60, 200), rng.randrange(60, 200))
    frame = cv2.add(frame, nrng.integers(0, 40, (H, W, 3), dtype=np.uint8))
    # A car body behind the plate, sometimes the plate's own colour (the hard case).
    car = tuple(int(c) for c in nrng.integers(20, 230, 3))
    cv2.rectangle(frame, (W // 5, H // 4), (W * 4 // 5, H), car, -1)
    for _ in range(6):
        y = rng.randrange(H // 4, H)
        cv2.line(frame, (W // 5, y), (W * 4 // 5, y), tuple(int(c) for c in nrng.integers(0, 255, 3)), 2)
    ph, pw = plate_img.shape[:2]
    target_w = rng.randrange(150, 260)
    s = target_w / pw
    cx, cy = W / 2 + rng.uniform(-200, 200), H * 0.65 + rng.uniform(-60, 60)
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    jit = lambda: rng.uniform(-0.04, 0.04) * target_w  # noqa: E731
    dst = np.float32(
        [[cx - pw * s / 2 + jit(), cy - ph * s / 2 + jit()], [cx + pw * s / 2 + jit(), cy - ph * s / 2 + jit()],
         [cx + pw * s / 2 + jit(), cy + ph * s / 2 + jit()], [cx - pw * s / 2 + jit(), cy + ph * s / 2 + jit()]]
    )
    M = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(plate_img, M, (W, H))
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), M, (W, H))
    frame[mask > 0] = warped[mask > 0]
    if rng.random() < 0.7:
        frame = cv2.GaussianBlur(frame, (3, 3), rng.uniform(0.3, 1.0))
    ok, enc = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, rng.randrange(60, 92)])
    return cv2.imdecode(enc, cv2.IMREAD_COLOR)


def _serial(rng: random.Random, n: int, letters: int = 1) -> str:
    chars = [rng.choice(plates.DIGITS) for _ in range(n)]
    for i in rng.sample(range(n), min(letters, n)):
        chars[i] = rng.choice(plates.LETTERS)
    return "".join(chars)


def make_plate(kind: str, rng: random.Random) -> tuple[str, str, bool]:
    """(plate text, colour, double_row) for a kind; adds the pseudo-kind ``double_row_yellow``."""
    prov = rng.choice(plates.PROVINCES)
    auth = rng.choice(plates.LETTERS)
    digits = lambda n: "".join(rng.choice(plates.DIGITS) for _ in range(n))  # noqa: E731
    if kind == "ordinary_blue":
        return prov + auth + _serial(rng, 5, rng.randrange(0, 3)), "blue", False
    if kind == "ordinary_yellow":
        return prov + auth + _serial(rng, 5, rng.randrange(0, 2)), "yellow", False
    if kind == "double_row_yellow":
        return prov + auth + _serial(rng, 5, rng.randrange(0, 2)), "yellow", True
    if kind == "trailer":
        return prov + auth + digits(4) + "挂", "yellow", True
    if kind == "learner":
        return prov + auth + digits(3) + rng.choice(plates.LETTERS) + "学", "yellow", False
    if kind == "new_energy_small":
        return prov + auth + rng.choice(plates.POWERTRAIN_SMALL) + rng.choice(plates.ALNUM) + digits(4), "green", False
    if kind == "new_energy_large":
        return prov + auth + digits(5) + rng.choice("DF"), "yellow-green", False
    if kind == "police":
        return prov + auth + digits(4) + "警", "white", False
    if kind == "hongkong":
        return "粤Z" + digits(4) + "港", "black", False
    if kind == "macau":
        return "粤Z" + digits(4) + "澳", "black", False
    raise ValueError(kind)


SYNTH_KINDS = ("ordinary_blue", "ordinary_yellow", "double_row_yellow", "trailer", "learner", "new_energy_small",
               "new_energy_large", "police", "hongkong", "macau")


def synthetic_set(per_kind: int = 5, seed: int = 20240601, kinds: tuple[str, ...] = SYNTH_KINDS) -> list[SynthSample]:
    rng = random.Random(seed)
    out = []
    for kind in kinds:
        for i in range(per_kind):
            text, color, double = make_plate(kind, rng)
            frame = place_in_frame(render_plate(text, color, double), rng)
            out.append(SynthSample(f"{kind}_{i}", text, color, plates.parse(text).kind, double, frame))
    return out
