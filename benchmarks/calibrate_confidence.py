"""Fit one engine's confidence map (plate_reader/calibration.json): the probability that a read is exact, given
the engine's raw score.

    .venv/bin/python -m benchmarks.calibrate_confidence --engine own [--write] [--ccpd DIR] [--limit N]

Fits on photos we may tune on: the CCPD **train** split (plate_reader/training/ccpd_split.json "train": the
photos of julienkolani/ccpd-character-recognition @0980fca3's CCPD_SubDataset whose plates are not in "test"),
each whole photo plus degraded copies (``DEGRADE``: far and small, soft and badly compressed, dark, washed out),
since clean photos alone have too few wrong reads to fit anything. The "test" photos and the EasyPR photos are
never read here. The reader runs with raw scores (``calibrated=False``); the combined engine always asks its
second expert, so every read it fits is a combined read (crops its own models read surely enough use the own map
at run time). Prints the knots, the reliability per bucket before and after (ECE: the read-weighted mean gap
between stated and observed accuracy, in sample), and with ``--write`` stores the map, the model versions it was
fitted for and this provenance in plate_reader/calibration.json. ``benchmarks/plate_reader.py`` shows the
reliability on the EasyPR photos, which were not used.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.ccpd import parse_name, photo_source  # noqa: E402
from plate_reader.calibration import ConfidenceMap, calibrate, fit_knots, load_maps, save_map  # noqa: E402
from plate_reader.reader import PlateReader  # noqa: E402
from plate_reader.training.ccpd import load_split  # noqa: E402

# (scale, JPEG quality, blur sigma, gain): a far, small plate; a soft, badly compressed camera; dusk; glare.
# The own models saw CCPD train crops in training, so the copies go far past what they were augmented with, or
# nearly all of their reads would be right and their map would claim certainty.
DEGRADE = ((0.3, 50, 0.0, 1.0), (0.4, 30, 1.2, 1.0), (0.5, 50, 0.0, 0.35), (0.5, 60, 0.0, 1.9),
           (0.22, 70, 0.0, 1.0), (0.16, 60, 0.0, 1.0))
BUCKETS = (0.0, 0.1, 0.3, 0.55, 0.8, 0.9, 0.95, 1.0001)


def degrade(img: np.ndarray, scale: float, quality: int, blur: float, gain: float = 1.0) -> np.ndarray:
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    if blur:
        small = cv2.GaussianBlur(small, (3, 3), blur)
    if gain != 1.0:
        small = cv2.convertScaleAbs(small, alpha=gain, beta=0)
    return cv2.imdecode(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)


def ece(stated: list[float], right: list[bool]) -> float:
    gap = 0.0
    for lo, hi in zip(BUCKETS, BUCKETS[1:], strict=False):
        inb = [(s, r) for s, r in zip(stated, right, strict=True) if lo <= s < hi]
        if inb:
            gap += abs(float(np.mean([r for _, r in inb])) - float(np.mean([s for s, _ in inb]))) * len(inb)
    return gap / max(1, len(stated))


def reliability(name: str, stated: list[float], right: list[bool]) -> None:
    cells = []
    for lo, hi in zip(BUCKETS, BUCKETS[1:], strict=False):
        inb = [r for s, r in zip(stated, right, strict=True) if lo <= s < hi]
        if inb:
            cells.append(f"[{lo:.2f},{min(hi, 1):.2f}) n={len(inb)} right={np.mean(inb):.0%}")
    print(f"{name}: ECE {ece(stated, right):.3f}; " + "; ".join(cells))


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", default="ppocr", choices=("ppocr", "own", "combined"))
    ap.add_argument("--ccpd", type=Path, default=None,
                    help="a CCPD_SubDataset folder (train/, test/); default: the pinned snapshot")
    ap.add_argument("--limit", type=int, default=0,
                    help="N train photos evenly spaced over the sorted list (0: all 479; a fit on a shared 2-core "
                         "machine reads about 3 frames/s per photo copy)")
    ap.add_argument("--min-block", type=int, default=25)
    ap.add_argument("--write", action="store_true", help="store the map in plate_reader/calibration.json")
    args = ap.parse_args()

    split = load_split()
    names = sorted(split["train"])
    held_out = set(split["test"])
    assert not held_out & set(names), "the train and test lists overlap"
    if args.limit and args.limit < len(names):
        names = [names[i * len(names) // args.limit] for i in range(args.limit)]
    read_photo = photo_source(args.ccpd)
    # combined: always ask PP-OCRv4, with no cap on a read's crops, so every fitted read is a combined read.
    reader = PlateReader(engine=args.engine, threads=1, calibrated=False,
                         expert_below=1.01 if args.engine == "combined" else 0.9, expert_crops=0)
    models = reader.fingerprint
    raw: list[float] = []
    right: list[bool] = []
    frames = 0
    started = time.perf_counter()
    for i, name in enumerate(names):
        if i and i % 50 == 0:
            print(f"  {i}/{len(names)} photos, {time.perf_counter() - started:.0f} s", flush=True)
        plate, _ = parse_name(name.rsplit("/", 1)[-1])
        photo = read_photo(name)
        for frame in [photo] + [degrade(photo, *d) for d in DEGRADE]:
            frames += 1
            r = reader.read(frame)
            if r.plate:  # no read, no claim: nothing to calibrate
                raw.append(r.confidence)
                right.append(r.plate == plate)
    knots = fit_knots(raw, right, min_block=args.min_block)
    secs = time.perf_counter() - started
    print(f"{args.engine}: {len(names)} CCPD train photos x {1 + len(DEGRADE)} = {frames} frames in {secs:.0f} s; "
          f"{len(raw)} reads with a plate, {sum(right)} exact")
    print(f"knots: {knots}")
    old = load_maps().get(args.engine)
    if old is not None:
        reliability(f"{args.engine} map in the file", [calibrate(c, old.knots) for c in raw], right)
    reliability("raw score ", raw, right)
    cal = [calibrate(c, knots) for c in raw]
    reliability("calibrated", cal, right)
    if args.write:
        fitted = {
            "data": f"CCPD train split ({len(names)} photos of plate_reader/training/ccpd_split.json 'train', "
                    "julienkolani/ccpd-character-recognition@0980fca3 TP/TP1/CCPD_SubDataset), whole photos plus "
                    f"degraded copies {[list(d) for d in DEGRADE]} (scale, JPEG quality, blur sigma, gain)",
            "frames": frames, "reads": len(raw), "exact": int(sum(right)),
            "ece_raw": round(ece(raw, right), 4), "ece_calibrated_in_sample": round(ece(cal, right), 4),
            "min_block": args.min_block, "code_commit": _commit(), "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "command": f"python -m benchmarks.calibrate_confidence --engine {args.engine}"
                       + (f" --limit {args.limit}" if args.limit else "") + " --write",
        }
        save_map(ConfidenceMap(args.engine, knots, models, fitted))
        print(f"written: plate_reader/calibration.json engines.{args.engine} (models {models})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
