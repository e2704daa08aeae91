"""Fit ``plate_reader.calibration.KNOTS``: the probability that a read is exact, given the reader's raw score.

    .venv/bin/python benchmarks/calibrate_confidence.py [--data DIR] [--engine own]

Fits on the EasyPR **dev** half only: the clean photos plus three degraded copies of each (shrunk to 0.5 and
0.35 and re-compressed, or shrunk to 0.6, blurred and compressed hard), since the clean dev half has too few
wrong reads to fit anything. Prints the knots to paste into plate_reader/calibration.py and, per bucket, how
often reads were right, before and after the map, with the expected calibration error (ECE: the read-weighted
mean gap between stated and observed accuracy). The reporting half is left alone; ``benchmarks/plate_reader.py``
shows its reliability.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plate_reader.calibration import calibrate, fit_knots  # noqa: E402
from plate_reader.dataset import default_dir, load  # noqa: E402
from plate_reader.reader import PlateReader  # noqa: E402

# (scale, JPEG quality, blur sigma): far, small plates; and a soft, badly compressed camera.
DEGRADE = ((0.5, 60, 0.0), (0.35, 70, 0.0), (0.6, 40, 0.8))
BUCKETS = (0.0, 0.1, 0.3, 0.55, 0.8, 0.9, 0.95, 1.0001)


def degrade(img: np.ndarray, scale: float, quality: int, blur: float) -> np.ndarray:
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    if blur:
        small = cv2.GaussianBlur(small, (3, 3), blur)
    return cv2.imdecode(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)


def reliability(name: str, stated: list[float], right: list[bool]) -> None:
    cells, gap = [], 0.0
    for lo, hi in zip(BUCKETS, BUCKETS[1:], strict=False):
        inb = [(s, r) for s, r in zip(stated, right, strict=True) if lo <= s < hi]
        if inb:
            acc = float(np.mean([r for _, r in inb]))
            gap += abs(acc - float(np.mean([s for s, _ in inb]))) * len(inb)
            cells.append(f"[{lo:.2f},{min(hi, 1):.2f}) n={len(inb)} right={acc:.0%}")
    print(f"{name}: ECE {gap / max(1, len(stated)):.3f}; " + "; ".join(cells))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_dir())
    ap.add_argument("--min-block", type=int, default=20)
    ap.add_argument("--engine", default="ppocr", help="the engine to fit (KNOTS_BY_ENGINE in calibration.py)")
    args = ap.parse_args()
    reader = PlateReader(engine=args.engine, threads=1)
    raw: list[float] = []
    right: list[bool] = []
    for s in load(args.data, half="dev"):
        photo = cv2.imdecode(np.fromfile(str(s.path), np.uint8), cv2.IMREAD_COLOR)
        for frame in [photo] + [degrade(photo, *d) for d in DEGRADE]:
            r = reader.read(frame)
            if r.plate:  # no read, no claim: nothing to calibrate
                raw.append(r.confidence)
                right.append(r.plate == s.plate)
    knots = fit_knots(raw, right, min_block=args.min_block)
    print(f"{len(raw)} reads with a plate, {sum(right)} exact")
    print(f"KNOTS_BY_ENGINE[{args.engine!r}] = " + repr(knots))
    reliability(f"{args.engine} map now", [calibrate(c, reader.knots) for c in raw], right)
    reliability("raw score ", raw, right)
    reliability("calibrated", [calibrate(c, knots) for c in raw], right)
    return 0


if __name__ == "__main__":
    sys.exit(main())
