"""A HARD synthetic evaluation set: ``synth.py``'s Noto-font plates (a renderer the project's model training never
uses) as loose crops under what gate cameras do to plates — dirt, rivets and holder frames, perspective, motion
blur, night and IR light, over-exposure and JPEG at quality 30–70.

Evaluation only (``benchmarks/plate_reader.py``): nothing here may feed training or tuning. Needs Pillow, as
``synth.py`` does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cv2
import numpy as np

from . import plates
from .synth import SYNTH_KINDS, make_plate, render_plate

DEGRADATIONS = ("dirt", "rivets", "frame", "motion", "night", "ir", "overexposed")


@dataclass(frozen=True)
class HardSample:
    name: str
    kind: str  # synth.SYNTH_KINDS entry
    plate: str
    color: str
    double_row: bool
    effects: tuple[str, ...]
    image: np.ndarray  # BGR loose crop: the plate in perspective with a margin of car body around it


def _dirt(img: np.ndarray, rng: random.Random) -> np.ndarray:
    h, w = img.shape[:2]
    layer = img.astype(np.float32)
    mask = np.zeros((h, w), np.float32)
    for _ in range(rng.randrange(6, 18)):
        c = (rng.randrange(w), int(h * rng.uniform(0.2, 1.0)))  # mud sits low on a plate
        axes = (rng.randrange(4, max(5, w // 10)), rng.randrange(3, max(4, h // 6)))
        cv2.ellipse(mask, c, axes, rng.uniform(0, 180), 0, 360, rng.uniform(0.3, 0.8), -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, w / 120))[..., None]
    mud = np.array([rng.randrange(30, 70), rng.randrange(50, 90), rng.randrange(70, 110)], np.float32)
    return (layer * (1 - mask) + mud * mask).clip(0, 255).astype(np.uint8)


def _rivets(img: np.ndarray, rng: random.Random, double: bool) -> np.ndarray:
    h, w = img.shape[:2]
    out = img.copy()
    r = max(3, h // (22 if double else 14))
    ys = (int(h * 0.2), int(h * 0.2)) if double else (int(h * 0.5), int(h * 0.5))
    xs = (int(w * rng.uniform(0.2, 0.28)), int(w * rng.uniform(0.72, 0.8)))
    for x, y in zip(xs, ys, strict=True):
        cv2.circle(out, (x, y), r, (190, 190, 195), -1)
        cv2.circle(out, (x, y), r, (90, 90, 95), max(1, r // 3))
        cv2.circle(out, (x - r // 3, y - r // 3), max(1, r // 3), (250, 250, 250), -1)
    return out


def _holder(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """A plate holder: a chrome or black frame round the plate, a dealer's strip below it."""
    h, w = img.shape[:2]
    t = max(4, int(h * rng.uniform(0.06, 0.12)))
    strip = int(h * rng.uniform(0.12, 0.22))
    color = (rng.choice([(30, 30, 30), (200, 200, 205), (120, 120, 125)]))
    out = np.empty((h + 2 * t + strip, w + 2 * t, 3), np.uint8)
    out[:] = color
    out[t : t + h, t : t + w] = img
    ink = (235, 235, 235) if sum(color) < 300 else (40, 40, 40)
    y = t + h + strip // 2
    for i in range(rng.randrange(5, 12)):  # dealer lettering: blobs, not plate characters
        x = int(w * 0.15 + i * w * 0.06)
        cv2.rectangle(out, (x, y - strip // 5), (x + int(w * 0.035), y + strip // 5), ink, -1)
    return out


def _motion(img: np.ndarray, rng: random.Random) -> np.ndarray:
    # A vehicle crossing the view at gate speed smears a few pixels: up to about a third of a stroke gap.
    n = rng.randrange(3, max(4, min(8, img.shape[1] // 25)))
    k = np.zeros((n, n), np.float32)
    k[n // 2, :] = 1.0
    M = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), rng.uniform(-20, 20), 1.0)
    k = cv2.warpAffine(k, M, (n, n))
    return cv2.filter2D(img, -1, k / max(float(k.sum()), 1e-6))


def _night(img: np.ndarray, rng: random.Random) -> np.ndarray:
    x = img.astype(np.float32) / 255.0
    x = x ** rng.uniform(1.4, 2.0) * rng.uniform(0.4, 0.65)
    x += np.random.default_rng(rng.randrange(1 << 30)).normal(0, rng.uniform(0.02, 0.05), x.shape)
    return (x.clip(0, 1) * 255).astype(np.uint8)


def _ir(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """Infrared fill light: most of the colour gone, the retro-reflective plate bright."""
    gray = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR).astype(np.float32)
    keep = rng.uniform(0.35, 0.6)  # a day/night camera keeps some colour; a pure IR one none
    x = img.astype(np.float32) * keep + gray * (1 - keep)
    return (x * rng.uniform(1.05, 1.3) + 10).clip(0, 255).astype(np.uint8)


def _overexposed(img: np.ndarray, rng: random.Random) -> np.ndarray:
    x = img.astype(np.float32) * rng.uniform(1.5, 2.1) + rng.uniform(10, 40)
    bloom = cv2.GaussianBlur(x, (0, 0), 3)
    return (0.7 * x + 0.3 * bloom).clip(0, 255).astype(np.uint8)


def _perspective(plate: np.ndarray, rng: random.Random) -> np.ndarray:
    """The plate warped by a random view, on car body, with a 6–18% margin: a loose crop, as a camera's."""
    ph, pw = plate.shape[:2]
    mx, my = pw * rng.uniform(0.06, 0.18), ph * rng.uniform(0.08, 0.22)
    W, H = int(pw + 2 * mx), int(ph + 2 * my)
    j = lambda s: rng.uniform(-s, s)  # noqa: E731
    yaw, sx, sy = j(0.12) * ph, pw * 0.05, ph * 0.06
    dst = np.float32([[mx + j(sx), my + yaw + j(sy)], [mx + pw + j(sx), my - yaw + j(sy)],
                      [mx + pw + j(sx), my + ph + yaw + j(sy)], [mx + j(sx), my + ph - yaw + j(sy)]])
    M = cv2.getPerspectiveTransform(np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]]), dst)
    body = np.empty((H, W, 3), np.uint8)
    body[:] = tuple(rng.randrange(20, 230) for _ in range(3))
    return cv2.warpPerspective(plate, M, (W, H), dst=body, borderMode=cv2.BORDER_TRANSPARENT)


def hard_sample(kind: str, rng: random.Random, index: int = 0) -> HardSample:
    text, color, double = make_plate(kind, rng)
    img = render_plate(text, color, double)
    effects: list[str] = []
    if rng.random() < 0.5:
        img = _dirt(img, rng)
        effects.append("dirt")
    if rng.random() < 0.5:
        img = _rivets(img, rng, double)
        effects.append("rivets")
    if rng.random() < 0.35:
        img = _holder(img, rng)
        effects.append("frame")
    img = _perspective(img, rng)
    # Down to a camera's plate size (120–240 px wide) before the optical and sensor effects.
    w = rng.randrange(120, 240)
    img = cv2.resize(img, (w, max(8, round(img.shape[0] * w / img.shape[1]))), interpolation=cv2.INTER_AREA)
    light = rng.random()
    if light < 0.2:
        img, effects = _night(img, rng), effects + ["night"]
    elif light < 0.35:
        img, effects = _ir(img, rng), effects + ["ir"]
    elif light < 0.5:
        img, effects = _overexposed(img, rng), effects + ["overexposed"]
    if rng.random() < 0.4:
        img = _motion(img, rng)
        effects.append("motion")
    q = rng.randrange(30, 71)
    img = cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_COLOR)
    return HardSample(f"{kind}_{index}", kind, text, color, double, tuple(effects), img)


def hard_set(per_kind: int = 60, seed: int = 20261201, kinds: tuple[str, ...] = SYNTH_KINDS) -> list[HardSample]:
    """``per_kind`` crops of every synthetic kind; fixed by the seed."""
    rng = random.Random(seed)
    out = [hard_sample(kind, rng, i) for kind in kinds for i in range(per_kind)]
    assert all(plates.is_valid(s.plate) for s in out)
    return out
