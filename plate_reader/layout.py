"""Crop layouts the plate models read: double-row stitching and the model input tensor.

Shared by training (which renders double-row plates and stitches them with this same function) and the
reader, so both see exactly the same pixels. Pure numpy/OpenCV: the service never needs torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

# A rectified crop carries a margin round the plate (locate.rectify pads 14% of the plate height above and
# below). On a 440x220 mm double-row plate the top row (province + letter) spans 15-75 mm and the bottom row
# 90-200 mm, i.e. 16-38% and 43-82% of such a crop: cutting at 40% leaves each row whole.
ROW_CUT = 0.40
# The top row's band starts below the crop's margin, so its characters fill the stitched height the way the
# bottom row's do (a localiser's error still leaves them whole: they start at 16%).
TOP_Y0 = 0.07
# The two top-row characters sit in the middle of the plate (110-330 mm of 440, 28-72% of the crop); the sides
# hold only rivets.
TOP_X = (0.2, 0.8)


def stitch_double_row(crop_bgr: np.ndarray) -> np.ndarray:
    """Place a double-row plate's top row left of its bottom row, at the bottom row's height.

    The result reads left to right as one row ("晋L" + "12345"), so the single-row recogniser reads it.
    """
    if crop_bgr.ndim not in (2, 3) or crop_bgr.shape[0] < 4 or crop_bgr.shape[1] < 4:
        raise ValueError(f"not an image crop: shape {crop_bgr.shape}")
    h, w = crop_bgr.shape[:2]
    cut = max(1, min(h - 1, int(round(h * ROW_CUT))))
    x0, x1 = int(round(w * TOP_X[0])), max(int(round(w * TOP_X[0])) + 1, int(round(w * TOP_X[1])))
    top = crop_bgr[min(int(round(h * TOP_Y0)), cut - 1):cut, x0:x1]
    bottom = crop_bgr[cut:]
    hb = bottom.shape[0]
    scale = hb / top.shape[0]
    top = cv2.resize(top, (max(1, int(round(top.shape[1] * scale))), hb), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(np.concatenate([top, bottom], axis=1))


def prepare(crop_bgr: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """The crop resized and converted per ``spec`` as uint8 [H, W, C], before normalisation."""
    spec = spec.get("input", spec)
    h, w, color = int(spec["height"]), int(spec["width"]), spec["color"]
    img = crop_bgr
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    # INTER_AREA when shrinking keeps thin strokes that nearest/linear sampling would drop.
    interp = cv2.INTER_AREA if img.shape[0] > h else cv2.INTER_LINEAR
    img = cv2.resize(img, (w, h), interpolation=interp)
    if color == "gray":
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[:, :, None]
    if color == "rgb":
        return np.ascontiguousarray(img[:, :, ::-1])
    if color != "bgr":
        raise ValueError(f"unknown input color {color!r}")
    return img


def normalise(img: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """uint8 [..., H, W, C] from ``prepare`` to the model's float32 [..., C, H, W]."""
    spec = spec.get("input", spec)
    mean = np.asarray(spec["mean"], dtype=np.float32)
    std = np.asarray(spec["std"], dtype=np.float32)
    x = (img.astype(np.float32) / 255.0 - mean) / std
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def to_input(crop_bgr: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """One crop as the model's float32 [C, H, W] input, per the ``input`` block of its json.

    ``spec`` may be the whole json or its ``input`` block: height, width, channels, color (bgr/rgb/gray),
    mean and std (x_norm = (x/255 - mean)/std, one value per channel).
    """
    return normalise(prepare(crop_bgr, spec), spec)
