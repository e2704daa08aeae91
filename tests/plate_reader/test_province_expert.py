"""The province classifier as the province slot's second expert (province_expert.py): pure decisions, then the
shipped classifier through the reader."""

import numpy as np
import pytest

from plate_reader import plates
from plate_reader.province_expert import apply, apply_many
from plate_reader.recognize import TextRead

CHARS = ["<blank>", *plates.PROVINCES, *plates.AUTHORITY, *plates.DIGITS]
INDEX = {c: i for i, c in enumerate(CHARS)}
LABELS = [*plates.PROVINCES, "other"]
ORDINARY = next(t for t in plates.TEMPLATES if t.kind == "ordinary").slots


def _read(text: str, first: dict[str, float], total: float = 1.0) -> TextRead:
    """A read of ``text`` whose province slot holds ``first`` (character: probability) and whose other slots
    are certain."""
    idx = np.array([INDEX[c] for c in first], dtype=np.int64)
    slot_probs = [(idx, np.array(list(first.values()), dtype=np.float64))]
    slot_probs += [(np.array([INDEX[c]]), np.array([1.0])) for c in text[1:]]
    return TextRead(text, [max(first.values()), *[1.0] * (len(text) - 1)], -0.1, slot_probs=slot_probs,
                    slot_totals=[total] + [1.0] * (len(text) - 1))


def _posterior(**probs: float) -> np.ndarray:
    q = np.full(len(LABELS), 1e-3)
    for c, v in probs.items():
        q[LABELS.index(c)] = v
    return q / q.sum()


def test_the_product_decides_the_province_and_leaves_the_other_slots():
    read = _read("云EZM618", {"云": 0.6, "皖": 0.4})
    got = apply(read, _posterior(皖=0.9, 云=0.05), LABELS, CHARS, ORDINARY)
    assert got.text == "皖EZM618"
    assert got.char_probs[1:] == read.char_probs[1:] and got.slot_probs[1:] == read.slot_probs[1:]
    idx, pr = got.slot_probs[0]
    assert pr.sum() == pytest.approx(1.0) and CHARS[int(idx[pr.argmax()])] == "皖"
    # 0.4 * 0.9 against 0.6 * 0.05: the product's posterior.
    assert got.char_probs[0] == pytest.approx(0.36 / (0.36 + 0.03), rel=1e-2)


def test_agreeing_experts_are_surer_and_a_shaky_slot_stays_shaky():
    read = _read("晋L12345", {"晋": 0.7, "鲁": 0.3})
    sure = apply(read, _posterior(晋=0.9, 鲁=0.05), LABELS, CHARS, ORDINARY)
    assert sure.text == "晋L12345" and sure.char_probs[0] > 0.9
    # The recogniser barely saw a character there (slot total 0.2): the product cannot make it certain.
    faint = apply(_read("晋L12345", {"晋": 0.7, "鲁": 0.3}, total=0.2), _posterior(晋=0.99), LABELS, CHARS, ORDINARY)
    assert faint.char_probs[0] <= 0.2 + 1e-9


def test_what_the_expert_does_not_speak_to_is_left_alone():
    read = _read("晋L12345", {"晋": 0.7, "鲁": 0.3})
    q = _posterior(鲁=0.99)
    assert apply(None, q, LABELS, CHARS, ORDINARY) is None
    assert apply(read, None, LABELS, CHARS, ORDINARY) is read
    embassy = next(t for t in plates.TEMPLATES if t.slots[0] != plates.PROVINCES).slots
    assert apply(read, q, LABELS, CHARS, embassy) is read
    bare = TextRead("晋L12345", [0.9] * 7, -0.1)
    assert apply(bare, q, LABELS, CHARS, ORDINARY) is bare
    # A classifier sure of "other" (no province) leaves the recogniser's own ranking.
    assert apply(read, _posterior(other=0.999), LABELS, CHARS, ORDINARY).text == "晋L12345"
    assert apply_many([read, None], q, LABELS, CHARS, [ORDINARY, ORDINARY])[1] is None


def test_a_nan_posterior_changes_nothing():
    read = _read("晋L12345", {"晋": 0.7, "鲁": 0.3})
    assert apply(read, np.full(len(LABELS), np.nan), LABELS, CHARS, ORDINARY) is read
