"""Real plate crops from the CCPD subset (julienkolani/ccpd-character-recognition @0980fca3, CCPD is MIT).

Each CCPD file name carries the plate's four corners and its characters as indices:
``area-tilt-bbox-x&y_x&y_x&y_x&y-p_a_c_c_c_c_c-brightness-blur.jpg``, corners from bottom-right clockwise.
``crops`` rectifies each plate from its corners (the same ``locate.rectify`` margin the reader's candidates get),
so a recogniser is compared on the very pixels of the plate, without any localisation.

Get the photos (no work tree in a fetched mirror):
    git -C <mirror> archive 0980fca3 TP/TP1/CCPD_SubDataset | tar -x -C /tmp/ccpd
or let ``photo_source`` read them straight from the pinned snapshot (the training's sources folder).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from plate_reader.locate import rectify

# CCPD's index tables (its README): province, then the authority letter, then five alphanumerics.
PROVINCES = ("皖", "沪", "津", "渝", "冀", "晋", "蒙", "辽", "吉", "黑", "苏", "浙", "京", "闽", "赣", "鲁", "豫", "鄂", "湘",
             "粤", "桂", "琼", "川", "贵", "云", "藏", "陕", "甘", "青", "宁", "新", "警", "学", "O")
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZO"
ADS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789O"


@dataclass(frozen=True)
class CcpdCrop:
    name: str
    plate: str
    crop: np.ndarray  # BGR, rectified from the four corners, 64 px high


def photo_source(folder: Path | None = None) -> Callable[[str], np.ndarray]:
    """Read a CCPD_SubDataset photo by its split name ("train/....jpg") from ``folder`` (holding train/ and
    test/), or else from the pinned snapshot: CLEANGATE_TRAIN_SOURCES (default /work/.mirror) as the training
    command finds it, at the pinned commit. Raises ``SourceMissing`` saying where it looked."""
    if folder is not None:
        return lambda name: _decode((Path(folder) / name).read_bytes(), name)
    from plate_reader.training import ccpd as tccpd
    from plate_reader.training.sources import SOURCES, git_dir

    src = next(s for s in SOURCES if s.repo.startswith("julienkolani/"))
    gd = git_dir(Path(os.environ.get("CLEANGATE_TRAIN_SOURCES", "/work/.mirror")), src)

    def read(name: str) -> np.ndarray:
        blob = subprocess.run(["git", "--git-dir", str(gd), "show", f"{src.commit}:{tccpd.SUBDIR}/{name}"],
                              capture_output=True, check=True).stdout
        return _decode(blob, name)

    return read


def _decode(blob: bytes, name: str) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"not an image: {name}")
    return image


def parse_name(name: str) -> tuple[str, np.ndarray]:
    """(plate text, 4×2 corners tl, tr, br, bl) from a CCPD file name."""
    parts = Path(name).stem.split("-")
    pts = np.array([[float(v) for v in p.split("&")] for p in parts[3].split("_")], dtype=np.float32)
    br, bl, tl, tr = pts
    idx = [int(v) for v in parts[4].split("_")]
    plate = PROVINCES[idx[0]] + LETTERS[idx[1]] + "".join(ADS[i] for i in idx[2:])
    return plate, np.array([tl, tr, br, bl], dtype=np.float32)


def crops(paths: list[Path], out_h: int = 64) -> list[CcpdCrop]:
    out = []
    for p in sorted(paths):
        image = cv2.imdecode(np.fromfile(str(p), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            continue
        plate, quad = parse_name(p.name)
        out.append(CcpdCrop(p.name, plate, rectify(image, quad, out_h=out_h)))
    return out


def tight_crops(paths: list[Path] | list[str], box: bool = False,
                read: Callable[[str], np.ndarray] | None = None) -> list[CcpdCrop]:
    """The plate cut to its corners without margin at CCPD's own 94x24 (a camera's plate thumbnail); ``box``:
    cut to CCPD's axis-aligned bounding box instead, unrectified (tilted plates stay tilted), as a plate
    detector's box would give it. ``read``: how to get a photo by its name (``photo_source``), else paths."""
    out = []
    for p in sorted(paths):
        if read is not None:
            image, p = read(str(p)), Path(p)
        else:
            image = cv2.imdecode(np.fromfile(str(p), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            continue
        plate, quad = parse_name(p.name)
        if box:
            (x0, y0), (x1, y1) = [[int(v) for v in c.split("&")] for c in Path(p.name).stem.split("-")[2].split("_")]
            crop = image[max(0, y0) : y1, max(0, x0) : x1]
        else:
            crop = rectify(image, quad, pad_x=0.0, pad_y=0.0, out_h=24)
        out.append(CcpdCrop(p.name, plate, cv2.resize(crop, (94, 24), interpolation=cv2.INTER_AREA)))
    return out
