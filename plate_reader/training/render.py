"""Renders clean GA 36-2018 plates from glyph images, for every plate kind the classifier knows.

Geometry follows GA 36-2018 in millimetres at one pixel per millimetre: 440x140 single-row plates (45x90 mm
characters, a 34 mm gap after the second one), 480x140 new-energy plates (43x90 mm, eight characters) and
440x220 double-row plates (two 80x60 mm characters above five 65x110 mm ones). ``augment.py`` turns a clean
plate into a camera crop. This is the training renderer; plate_reader/synth.py (Noto font) stays an
independent evaluation renderer and is never used here.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from plate_reader import plates
from plate_reader.layout import stitch_double_row
from plate_reader.training.glyphs import GlyphBank, font_sets

KINDS = ("blue", "yellow", "yellow_double", "green", "yellow_green", "white", "black")

SINGLE_X = (15.5, 72.5, 151.5, 208.5, 265.5, 322.5, 379.5)
NE_X = (15.5, 67.5, 161.5, 213.5, 265.5, 317.5, 369.5, 421.5)
UP_X, DOWN_X = (110.0, 250.0), (27.5, 107.5, 187.5, 267.5, 347.5)

# Share of plates given 晋 outright (the rest draw all 31 provinces uniformly, 晋 among them).
PROVINCE_JIN = 0.06
# Glyph-set variety at the province slot: provinces are the slot 2026.12.01-2 misread (51% vs 1-4% for the
# others on its held-out set), so they get the alternative shapes more often than the other characters.
PROVINCE_VARIETY = 0.55
# Style 6: share of plates drawn in one system font (a model that knows only GA 36's shapes reads other
# renderings of the same characters badly: Noto-font evaluation plates, worn or re-painted real ones).
FONT_PLATES = 0.35
# Style 7: half the plates, in the fonts of glyphs.SYSTEM_FONTS and MORE_FONTS (2026.12.02-4, trained with
# style 6, read plates in four fonts it never saw 37% exact against 84% in GA 36 shapes).
FONT_PLATES_7 = 0.5

WHITE_INK, BLACK_INK, RED_INK = (235, 235, 235), (20, 20, 20), (30, 30, 190)


@dataclass
class Plate:
    text: str
    kind: str           # one of KINDS
    image: np.ndarray   # BGR, clean, 1 px per mm
    double: bool
    font: str | None = None  # the system-font glyph set its characters were drawn from (style 6), if any


def _serial(rng: np.random.Generator, n: int, letters: int | None = None) -> str:
    """n alphanumerics; real plates are mostly digits with up to two or three letters."""
    k = int(rng.choice([0, 1, 1, 2, 2, 3])) if letters is None else letters
    pos = set(rng.choice(n, size=min(k, n), replace=False).tolist())
    return "".join(rng.choice(list(plates.LETTERS)) if i in pos else rng.choice(list(plates.DIGITS))
                   for i in range(n))


def _province(rng: np.random.Generator) -> str:
    # Linfen's own 晋 is what the gates see most; every province still appears often (a stronger 晋 share
    # taught the first model to call every unclear province 晋: 2026.12.01-2, at 12%, still read 30% of its
    # wrong provinces as 晋, so it is 6% now).
    return "晋" if rng.random() < PROVINCE_JIN else str(rng.choice(list(plates.PROVINCES)))


def random_text(rng: np.random.Generator, kind: str) -> str:
    prov, auth = _province(rng), str(rng.choice(list(plates.LETTERS)))
    if kind == "blue":
        return prov + auth + _serial(rng, 5)
    if kind == "yellow":
        r = rng.random()
        if r < 0.15:
            return prov + auth + _serial(rng, 4) + "学"
        if r < 0.25:
            return prov + auth + _serial(rng, 4) + "挂"
        return prov + auth + _serial(rng, 5)
    if kind == "yellow_double":
        return prov + auth + _serial(rng, 4) + "挂" if rng.random() < 0.3 else prov + auth + _serial(rng, 5)
    if kind == "green":
        p3 = str(rng.choice(list(plates.POWERTRAIN_SMALL)))
        p4 = str(rng.choice(list(plates.ALNUM))) if rng.random() < 0.4 else str(rng.choice(list(plates.DIGITS)))
        return prov + auth + p3 + p4 + "".join(rng.choice(list(plates.DIGITS), 4))
    if kind == "yellow_green":
        return prov + auth + "".join(rng.choice(list(plates.DIGITS), 5)) + str(rng.choice(["D", "F"]))
    if kind == "white":
        auth = "O" if rng.random() < 0.15 else auth
        return prov + auth + _serial(rng, 4) + "警"
    # black: Hong Kong / Macau, consulate, embassy (both orders)
    r = rng.random()
    if r < 0.3:
        return "粤Z" + _serial(rng, 4) + "港"
    if r < 0.55:
        return "粤Z" + _serial(rng, 4) + "澳"
    if r < 0.75:
        return prov + auth + _serial(rng, 4) + "领"
    digits = "".join(rng.choice(list(plates.DIGITS), 6))
    return "使" + digits if r < 0.9 else digits + "使"


def _tint(bg: np.ndarray, rng: np.random.Generator, amount: float = 0.12) -> np.ndarray:
    gains = (1.0 + rng.uniform(-amount, amount, 3)).astype(np.float32)
    return np.minimum(bg.astype(np.float32) * gains, 255.0)


def _flat(w: int, h: int, bgr: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    img = np.empty((h, w, 3), np.float32)
    img[:] = bgr
    return _tint(img, rng)


def background(bank: GlyphBank, kind: str, text: str, rng: np.random.Generator, double: bool) -> np.ndarray:
    w, h = (480, 140) if kind in ("green", "yellow_green") else (440, 220 if double else 140)
    name = {"blue": "blue_140", "yellow": "yellow_140", "yellow_double": "yellow_220", "green": "green_140",
            "yellow_green": "green_yellow_140", "white": "white_140", "black": "black_140"}[kind]
    if kind == "black" and text.endswith("领"):
        name = "black_ling_140"
    bg = bank.backgrounds.get(name)
    if bg is None or rng.random() < 0.15:
        # A flat plate without the template's rivet holes: real plates are often bolted over them.
        colour = {"blue": (150, 60, 10), "yellow": (20, 185, 245), "yellow_double": (20, 185, 245),
                  "green": (120, 200, 110), "yellow_green": (110, 190, 120), "white": (235, 235, 235),
                  "black": (20, 20, 20)}[kind]
        return _flat(w, h, colour, rng)
    return _tint(cv2.resize(bg, (w, h), interpolation=cv2.INTER_AREA), rng)


def _ink_colour(kind: str, ch: str, i: int, n: int) -> tuple[int, int, int]:
    if kind == "white" and ch == "警":
        return RED_INK
    if kind == "black":
        return RED_INK if ch in "使领" else WHITE_INK
    return WHITE_INK if kind == "blue" else BLACK_INK


def _choose_set(bank: GlyphBank, rng: np.random.Generator, base: str, ch: str, variety: float) -> str:
    if rng.random() < variety:
        options = [s for s in ("real", "alt", "ttf") if bank.has(s, ch)]
        if ch in plates.PROVINCES and "real" in options:
            # Province characters cut from real plates (wzh191920, ~60 shapes each) twice as often as the
            # one alternative drawing: their shape variety is what real photos need.
            options.append("real")
        if options:
            return str(rng.choice(options))
    if bank.has(base, ch):
        return base
    for s in ("single", "alt", "real", "ttf", "green", "down", "up"):
        if bank.has(s, ch):
            return s
    if ch == "O":
        return _choose_set(bank, rng, base, "0", 0.0)
    raise KeyError(f"no glyph for {ch!r}")


def _stamp(canvas: np.ndarray, mask: np.ndarray, tight: bool, x: float, y: float, w: float, h: float,
           colour: tuple[int, int, int], rng: np.random.Generator, bold: float) -> None:
    H, W = canvas.shape[:2]
    if tight:
        # A tight ink box (cut from a real plate, or a font): keep its aspect, at most the slot's width.
        gw = min(w, mask.shape[1] * h / mask.shape[0])
        x, w = x + (w - gw) / 2.0, gw
    x0, y0 = int(round(x)), int(round(y))
    gw, gh = max(2, int(round(w))), max(2, int(round(h)))
    m = cv2.resize(mask, (gw, gh), interpolation=cv2.INTER_LINEAR)
    if bold:
        k = np.ones((3, 3), np.uint8)
        m = cv2.dilate(m, k) if bold > 0 else cv2.erode(m, k)
    x1, y1 = min(W, x0 + gw), min(H, y0 + gh)
    if x1 <= x0 or y1 <= y0:
        return
    m = m[: y1 - y0, : x1 - x0, None]
    region = canvas[y0:y1, x0:x1]
    region[:] = region * (1.0 - m) + np.asarray(colour, np.float32) * m


def render_plate(bank: GlyphBank, rng: np.random.Generator, kind: str, text: str | None = None,
                 variety: float = 0.35, fonts: bool = False, font_share: float = FONT_PLATES,
                 font_names: list[str] | None = None, rows_variety: bool = False) -> Plate:
    """A clean plate of this kind: background, rivet holes, glyphs at their GA 36 positions. ``fonts``
    (augmentation styles 6 and 7): ``font_share`` of the plates take their characters from one of the bank's
    font sets (``font_names``, default all of them) where it has them. ``rows_variety`` (style 8): a double-row
    plate's characters draw the other glyph sets as often as a single-row plate's do. Without either the draws
    are those of styles 4 and 5."""
    text = text or random_text(rng, kind)
    font = None
    if fonts:
        names = font_sets(bank) if font_names is None else font_names
        if names and rng.random() < font_share:
            font = str(rng.choice(names))
    double = kind == "yellow_double"
    img = background(bank, kind, text, rng, double)
    # Per-plate jitter of glyph geometry: embossing, wear and printing differ from plate to plate.
    dy, sx, sy = rng.uniform(-3, 3), rng.uniform(0.92, 1.06), rng.uniform(0.92, 1.05)
    bold = float(rng.choice([-1, 0, 0, 0, 1])) if rng.random() < 0.5 else 0.0
    slots: list[tuple[str, float, float, float, float]] = []
    if double:
        slots = [("up", x, 15, 80, 60) for x in UP_X] + [("down", x, 90, 65, 110) for x in DOWN_X]
    elif len(text) == 8:
        slots = [("green", x, 25, 43, 90) for x in NE_X]
    else:
        slots = [("single", x, 25, 45, 90) for x in SINGLE_X]
    for i, (ch, (base, x, y, w, h)) in enumerate(zip(text, slots, strict=True)):
        if ch in plates.SUFFIXES and base == "down" and not bank.has("down", ch):
            base = "single"
        v = max(variety, PROVINCE_VARIETY) if i == 0 and ch in plates.PROVINCES else variety
        if font is not None and bank.has(font, ch):
            name = font
        else:
            # Double-row glyphs took a third of the variety (styles 4-7): 82% of their provinces were yyq's one
            # 220_up drawing, and double-row plates read the province wrong 2-3 times as often as single-row.
            full = base in ("single", "green") or rows_variety
            name = _choose_set(bank, rng, base, ch, v if full else v / 3)
        mask, tight = bank.pick(rng, name, ch if bank.has(name, ch) else "0")
        cw, ch_h = w * sx, h * sy
        _stamp(img, mask, tight, x + (w - cw) / 2, y + dy + (h - ch_h) / 2, cw, ch_h,
               _ink_colour(kind, ch, i, len(text)), rng, bold)
    if not double and len(text) == 7 and rng.random() < 0.6:
        # The middle dot after the authority letter.
        cv2.circle(img, (int(139.5), int(70 + dy)), 4, _ink_colour(kind, "0", 0, 7), -1, cv2.LINE_AA)
    return Plate(text=text, kind=kind, image=np.clip(img, 0, 255).astype(np.uint8), double=double, font=font)


def recogniser_view(crop: np.ndarray, double: bool) -> np.ndarray:
    """What the recogniser reads: the crop itself, or for a double-row plate its stitched single row."""
    return stitch_double_row(crop) if double else crop
