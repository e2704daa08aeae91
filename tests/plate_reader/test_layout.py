"""plate_reader.layout: double-row stitching and model input preparation (shared by training and reader)."""

import json
from importlib import resources

import numpy as np
import pytest

from plate_reader import layout


def _double_row_crop(h=120, w=210):
    """A crop whose top 40% is red with a white block in the middle and whose bottom is green."""
    img = np.zeros((h, w, 3), np.uint8)
    cut = int(round(h * layout.ROW_CUT))
    img[:cut] = (0, 0, 200)
    img[cut:] = (0, 200, 0)
    img[cut // 4: cut * 3 // 4, w // 2 - 10: w // 2 + 10] = 255
    return img, cut


def test_stitch_puts_top_row_left_of_bottom_row_at_its_height():
    img, cut = _double_row_crop()
    out = layout.stitch_double_row(img)
    h_bottom = img.shape[0] - cut
    assert out.shape[0] == h_bottom
    # The bottom row is kept pixel for pixel at the right.
    np.testing.assert_array_equal(out[:, -img.shape[1]:], img[cut:])
    top_w = out.shape[1] - img.shape[1]
    x0, x1 = (round(img.shape[1] * f) for f in layout.TOP_X)
    y0 = round(img.shape[0] * layout.TOP_Y0)
    assert top_w == round((x1 - x0) * h_bottom / (cut - y0))
    left = out[:, :top_w]
    # The top row is scaled up, not squashed: red background, the white block still in its middle.
    assert (left[..., 2] > 150).mean() > 0.6 and (left[..., 1] < 50).mean() > 0.6
    mid = left[h_bottom // 2, top_w // 2]
    assert mid.min() > 200


def test_stitch_accepts_gray_and_rejects_non_images():
    gray = np.full((60, 120), 128, np.uint8)
    assert layout.stitch_double_row(gray).ndim == 2
    with pytest.raises(ValueError):
        layout.stitch_double_row(np.zeros((2, 2, 3), np.uint8))


@pytest.mark.parametrize("color,channels", [("gray", 1), ("bgr", 3), ("rgb", 3)])
def test_to_input_shape_and_normalisation(color, channels):
    spec = {"height": 32, "width": 128, "channels": channels, "color": color,
            "mean": [0.5] * channels, "std": [0.25] * channels}
    crop = np.zeros((50, 180, 3), np.uint8)
    crop[:, :, 2] = 255  # pure red in BGR
    x = layout.to_input(crop, spec)
    assert x.shape == (channels, 32, 128) and x.dtype == np.float32
    if color == "bgr":
        np.testing.assert_allclose(x[:, 5, 5], [-2.0, -2.0, 2.0])
    elif color == "rgb":
        np.testing.assert_allclose(x[:, 5, 5], [2.0, -2.0, -2.0])
    else:
        # OpenCV's luma weights give pure red 76/255.
        np.testing.assert_allclose(x[0, 5, 5], (76 / 255 - 0.5) / 0.25, atol=1e-2)


def test_to_input_takes_whole_json_and_batches_normalise():
    spec = {"name": "x", "input": {"height": 8, "width": 16, "channels": 1, "color": "gray", "mean": [0.0],
                                   "std": [1.0]}}
    crop = np.full((20, 40, 3), 255, np.uint8)
    assert layout.to_input(crop, spec).shape == (1, 8, 16)
    batch = np.stack([layout.prepare(crop, spec)] * 3)
    x = layout.normalise(batch, spec)
    assert x.shape == (3, 1, 8, 16)
    np.testing.assert_allclose(x, 1.0)
    with pytest.raises(ValueError):
        layout.to_input(crop, {**spec["input"], "color": "hsv"})


@pytest.mark.parametrize("name", ["plate_rec.json", "plate_kind.json"])
def test_shipped_specs_give_their_declared_input(name):
    spec = json.loads(resources.files("plate_reader.weights").joinpath(name).read_text(encoding="utf-8"))
    crop = np.random.default_rng(0).integers(0, 256, (44, 150, 3), dtype=np.uint8)
    x = layout.to_input(crop, spec)
    inp = spec["input"]
    assert x.shape == (inp["channels"], inp["height"], inp["width"])
