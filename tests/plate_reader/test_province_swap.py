"""The CCPD province swap on a tiny tree: CCPD-named photos of plates rendered from glyphs drawn here.

The swap must change the label's province only, leave every pixel outside the province box as it was, and
leave the new province's glyph (not the old one's) in the box.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest

from plate_reader import plates
from plate_reader.training import ccpd, data, glyphs, province_swap, render

CCPD_DIR = "julienkolani+ccpd-character-recognition/TP/TP1/CCPD_SubDataset"


def _glyph(ch: str) -> np.ndarray:
    """Ink alpha of a 45x90 cell: Hershey text for ASCII, blocks placed by the code point otherwise."""
    img = np.zeros((90, 45), np.uint8)
    if ch.isascii():
        cv2.putText(img, ch, (3, 75), cv2.FONT_HERSHEY_SIMPLEX, 2.2, 255, 6)
    else:
        rng = np.random.default_rng(ord(ch))
        for _ in range(6):
            x, y = rng.integers(0, 33), rng.integers(0, 78)
            cv2.rectangle(img, (int(x), int(y)), (int(x) + 12, int(y) + 12), 255, -1)
    return img.astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def bank() -> glyphs.GlyphBank:
    b = glyphs.GlyphBank()
    for ch in plates.PROVINCES + plates.LETTERS + plates.DIGITS:
        b.add("single", ch, _glyph(ch))
    return b


def _photo(bank: glyphs.GlyphBank, rng: np.random.Generator, text: str) -> tuple[np.ndarray, np.ndarray]:
    """A 480x320 photo holding the blue plate ``text`` under a mild perspective, and its corners tl, tr, br, bl."""
    plate = render.render_plate(bank, rng, "blue", text=text, variety=0.0).image
    quad = np.float32([[70, 110], [422, 98], [428, 214], [66, 222]])
    M = cv2.getPerspectiveTransform(np.float32([[0, 0], [440, 0], [440, 140], [0, 140]]), quad)
    photo = np.empty((320, 480, 3), np.uint8)
    photo[:] = (70, 90, 60)
    photo += rng.integers(0, 20, photo.shape, dtype=np.uint8)
    cv2.warpPerspective(plate, M, (480, 320), dst=photo, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    return photo, quad


def _slot(photo: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The photo's province slot (GA 36 position) rectified to the 45x90 glyph cell, gray float."""
    x, y, w, h = province_swap.SLOT_MM
    M = province_swap.plate_homography(quad) @ np.float32([[1, 0, x], [0, 1, y], [0, 0, 1]])
    cell = cv2.warpPerspective(photo, np.linalg.inv(M), (int(w), int(h)), flags=cv2.INTER_LINEAR)
    return cv2.cvtColor(cell, cv2.COLOR_BGR2GRAY).astype(np.float32)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-9))


def test_swap_changes_only_the_province_box_and_its_label(bank):
    rng = np.random.default_rng(3)
    for text in ("皖A12345", "皖KD8763", "苏E0Y882"):
        photo, quad = _photo(bank, rng, text)
        before = photo.copy()
        out, new_text = province_swap.swap_province(photo, quad, text, bank, rng)
        assert np.array_equal(photo, before), "the input photo must not be modified"
        assert new_text[1:] == text[1:] and new_text[0] != text[0] and new_text[0] in plates.PROVINCES

        box = np.zeros(photo.shape[:2], np.uint8)
        cv2.fillPoly(box, [np.round(province_swap.box_polygon(quad)).astype(np.int32)], 1)
        # One pixel of slack for the bilinear warp's footprint at the box's edge.
        outside = cv2.dilate(box, np.ones((3, 3), np.uint8)) == 0
        assert np.array_equal(out[outside], photo[outside])
        changed = np.abs(out.astype(int) - photo.astype(int)).max(axis=2) > 40
        assert changed[box > 0].mean() > 0.05

        # The glyph now in the slot is the new province's, and the old one is gone.
        slot = _slot(out, quad)
        new_c, old_c = _corr(slot, _glyph(new_text[0])), _corr(slot, _glyph(text[0]))
        assert new_c > 0.45 and new_c > old_c + 0.3, (text, new_text, new_c, old_c)
        assert _corr(_slot(photo, quad), _glyph(text[0])) > 0.5


def test_swap_to_a_named_province(bank):
    rng = np.random.default_rng(4)
    photo, quad = _photo(bank, rng, "皖A30Q30")
    out, new_text = province_swap.swap_province(photo, quad, "皖A30Q30", bank, rng, new="晋")
    assert new_text == "晋A30Q30"
    assert _corr(_slot(out, quad), _glyph("晋")) > 0.5


def _ccpd_name(i: int, text: str, quad: np.ndarray) -> str:
    tl, tr, br, bl = (f"{int(x)}&{int(y)}" for x, y in quad)
    idx = [ccpd.PROVINCES.index(text[0]), ccpd.ALPHABETS.index(text[1])] + [ccpd.ADS.index(c) for c in text[2:]]
    return f"{i:04d}-90_90-0&0_1&1-{br}_{bl}_{tl}_{tr}-{'_'.join(map(str, idx))}-100-50.jpg"


def test_ccpd_crops_swap_a_share_of_copies_and_keep_the_rest(bank, tmp_path):
    rng = np.random.default_rng(5)
    root = tmp_path / CCPD_DIR
    (root / "train").mkdir(parents=True)
    names = []
    for i, text in enumerate(("皖A12345", "皖AF3425", "皖AK5S11")):
        photo, quad = _photo(bank, rng, text)
        name = _ccpd_name(i, text, quad)
        cv2.imwrite(str(root / "train" / name), photo)
        names.append(f"train/{name}")
    plain = data.ccpd_crops(root, names, 8, seed=1)
    mixed = data.ccpd_crops(root, names, 8, seed=1, swap=0.75, bank=bank)
    truth = [ccpd.parse_name(Path(n).name)[0] for n in names for _ in range(8)]
    assert plain.texts == truth
    swapped = [i for i, (a, b) in enumerate(zip(mixed.texts, truth, strict=True)) if a != b]
    assert 8 <= len(swapped) <= 23
    for i in range(len(truth)):
        if i in swapped:
            assert mixed.texts[i][1:] == truth[i][1:] and mixed.texts[i][0] != "皖"
            assert not np.array_equal(mixed.rec[i], plain.rec[i])
        else:
            # The swap draws from its own random stream: a copy it leaves alone is the very crop swap=0 cuts.
            assert np.array_equal(mixed.rec[i], plain.rec[i])
    with pytest.raises(ValueError):
        data.ccpd_crops(root, names, 1, seed=1, swap=0.5)
