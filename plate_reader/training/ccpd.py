"""The CCPD subset: labels and plate corners from the file names, the split by plate, rectified crops.

A CCPD file name is ``area-tilt-bbox-corners-indices-brightness-blur.jpg``; ``corners`` are four ``x&y`` points
starting bottom-right and going clockwise, ``indices`` index the province, authority-letter and serial tables
below (CCPD's own). The split is by plate text, so no plate in the test part is ever trained on, and is
committed as ``ccpd_split.json`` for the reader's evaluation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from plate_reader.training.augment import PAD_X, PAD_Y, crop_quad

PROVINCES = ["皖", "沪", "津", "渝", "冀", "晋", "蒙", "辽", "吉", "黑", "苏", "浙", "京", "闽", "赣", "鲁", "豫", "鄂", "湘", "粤",
             "桂", "琼", "川", "贵", "云", "藏", "陕", "甘", "青", "宁", "新", "警", "学", "O"]
ALPHABETS = list("ABCDEFGHJKLMNPQRSTUVWXYZO")
ADS = list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789O")

SPLIT_SALT = "cleangate-ccpd-split-v1"
TEST_FRACTION = 0.2
SPLIT_FILE = Path(__file__).with_name("ccpd_split.json")
SUBDIR = "TP/TP1/CCPD_SubDataset"


@dataclass(frozen=True)
class Photo:
    path: Path
    name: str          # path relative to the CCPD_SubDataset folder, e.g. "train/0123-...jpg"
    plate: str
    quad: np.ndarray   # tl, tr, br, bl (float32 [4, 2])


def parse_name(file_name: str) -> tuple[str, np.ndarray]:
    fields = Path(file_name).stem.split("-")
    if len(fields) < 7:
        raise ValueError(f"not a CCPD file name: {file_name}")
    pts = [tuple(float(v) for v in p.split("&")) for p in fields[3].split("_")]
    br, bl, tl, tr = pts
    idx = [int(v) for v in fields[4].split("_")]
    plate = PROVINCES[idx[0]] + ALPHABETS[idx[1]] + "".join(ADS[i] for i in idx[2:])
    return plate, np.float32([tl, tr, br, bl])


def photos(root: Path) -> list[Photo]:
    base = Path(root)
    out = []
    for path in sorted(base.glob("*/*.jpg")):
        plate, quad = parse_name(path.name)
        out.append(Photo(path, f"{path.parent.name}/{path.name}", plate, quad))
    return out


def _rank(plate: str) -> str:
    return hashlib.sha256(f"{SPLIT_SALT}:{plate}".encode()).hexdigest()


def make_split(items: list[Photo]) -> dict[str, list[str]]:
    """Plates ranked by a salted hash; the first 20% of distinct plates (all their photos) are the test part."""
    plates_ = sorted({p.plate for p in items}, key=_rank)
    n_test = int(round(len(plates_) * TEST_FRACTION))
    test_plates = set(plates_[:n_test])
    return {"test": sorted(p.name for p in items if p.plate in test_plates),
            "train": sorted(p.name for p in items if p.plate not in test_plates)}


def write_split(split: dict[str, list[str]], path: Path = SPLIT_FILE) -> None:
    doc = {"source": "julienkolani/ccpd-character-recognition@0980fca3 " + SUBDIR,
           "rule": f"distinct plates ranked by sha256('{SPLIT_SALT}:' + plate); first {TEST_FRACTION:.0%} -> test",
           "test": split["test"], "train": split["train"]}
    Path(path).write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def load_split(path: Path = SPLIT_FILE) -> dict[str, list[str]]:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    return {"test": doc["test"], "train": doc["train"]}


def rectify(image: np.ndarray, quad: np.ndarray, rng: np.random.Generator | None = None,
            out_h: int | None = None) -> np.ndarray:
    """The plate quad padded like ``locate.rectify`` and warped flat; with ``rng``, a localiser's jitter."""
    q = quad.astype(np.float32).copy()
    tl, tr, br, bl = q
    wv, hv = (tr - tl + br - bl) / 2, (bl - tl + br - tr) / 2
    w, h = float(np.linalg.norm(wv)), float(np.linalg.norm(hv))
    if rng is not None:
        q = q + rng.normal(0, 1, q.shape).astype(np.float32) * np.float32([w * 0.03, h * 0.08])
        padded, aspect = crop_quad(q, rng)
    else:
        padded = np.float32([tl - wv * PAD_X - hv * PAD_Y, tr + wv * PAD_X - hv * PAD_Y,
                             br + wv * PAD_X + hv * PAD_Y, bl - wv * PAD_X + hv * PAD_Y])
        aspect = w * (1 + 2 * PAD_X) / max(1.0, h * (1 + 2 * PAD_Y))
    oh = out_h or max(16, int(round(h * (1 + 2 * PAD_Y))))
    ow = max(16, int(round(oh * aspect)))
    M = cv2.getPerspectiveTransform(padded, np.float32([[0, 0], [ow, 0], [ow, oh], [0, oh]]))
    return cv2.warpPerspective(image, M, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def read_photo(path: Path) -> np.ndarray:
    img = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read {path}")
    return img
