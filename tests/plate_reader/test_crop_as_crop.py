"""Issue 13 item 4: an image that is already a plate crop is read whole, not searched for a plate inside it."""


import cv2
import numpy as np
import pytest

from plate_reader.reader import looks_like_crop
from plate_reader.synth import render_plate


def test_real_plate_thumbnails_are_read_as_crops(reader, ccpd_crops):
    # CCPD's 94x24 thumbnails, cut from held-out photos: the read's box is the whole image.
    got = []
    for crop, plate in ccpd_crops:
        r = reader.read(crop)
        h, w = crop.shape[:2]
        assert r.box is not None and r.box[2] >= w * 0.95 and r.box[3] >= h * 0.95, (plate, r.box)
        got.append(r.plate == plate)
    assert sum(got) >= len(got) - 1


@pytest.mark.parametrize("text, color, double, size", [
    ("晋LB5678", "blue", False, (188, 60)),
    ("晋L12345D", "yellow-green", False, (240, 70)),
    ("晋L12345", "yellow", True, (176, 88)),
])
def test_synthetic_crops_are_read_whole(reader, text, color, double, size):
    crop = cv2.resize(render_plate(text, color, double), size, interpolation=cv2.INTER_AREA)
    r = reader.read(cv2.imencode(".png", crop)[1].tobytes())
    assert r.plate == text
    assert r.box is not None and r.box[2] >= size[0] * 0.95


def test_scenes_are_not_taken_for_crops():
    assert not looks_like_crop(np.full((720, 1280, 3), 90, np.uint8))  # a camera frame
    assert not looks_like_crop(np.full((400, 1400, 3), 90, np.uint8))  # wide, but a grey scene, not a plate
    assert not looks_like_crop(np.full((344, 800, 3), 30, np.uint8))  # a night street scene (EasyPR has some)
    assert looks_like_crop(cv2.resize(render_plate("晋LB5678", "blue"), (660, 210)))  # big, filled by blue
