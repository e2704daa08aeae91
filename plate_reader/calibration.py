"""Turning the reader's raw evidence score into a probability that the plate is read exactly.

The raw score (weakest character's probability, discounted by a poor alignment) orders reads well but is not a
probability: reads scored 0.1–0.3 were right about half the time, reads at 0.55–0.8 nearly nine times in ten.
``KNOTS`` is a monotone (isotonic) fit of "read exactly right" against the raw score, made by
``benchmarks/calibrate_confidence.py`` on the EasyPR **dev** half and degraded copies of it (shrunk, blurred,
re-compressed: the clean dev half alone has too few errors to fit). Between knots the map is linear. The
reporting half is never used for the fit; the plate-reader benchmark prints its reliability table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# (raw score, probability of an exact read), raw ascending. Refit with benchmarks/calibrate_confidence.py.
# Fit 2026-11-29 on 436 dev-half reads with a plate (307 exact): ECE 0.096 raw → 0.017 calibrated, in sample.
KNOTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0), (0.0014, 0.0), (0.0126, 0.4), (0.1316, 0.4333), (0.4424, 0.6), (0.6462, 0.825), (0.869, 0.9),
    (0.9865, 0.995), (1.0, 0.995),
)


# Each engine's raw score lives on its own scale: the own models are far surer of their characters than
# PP-OCRv4, so each engine gets its own fit (an engine without one uses PP-OCRv4's).
KNOTS_BY_ENGINE: dict[str, tuple[tuple[float, float], ...]] = {"ppocr": KNOTS}


def knots_for(engine: str) -> tuple[tuple[float, float], ...]:
    return KNOTS_BY_ENGINE.get(engine, KNOTS)


def calibrate(raw: float, knots: Sequence[tuple[float, float]] = KNOTS) -> float:
    """Probability that a read with this raw score is exactly right (0–1, monotone in ``raw``)."""
    xs = [k[0] for k in knots]
    ys = [k[1] for k in knots]
    return float(np.clip(np.interp(float(raw), xs, ys), 0.0, 1.0))


def fit_knots(raw: Sequence[float], correct: Sequence[bool], *, min_block: int = 12,
              ceiling: float = 0.995) -> tuple[tuple[float, float], ...]:
    """Isotonic regression (pool adjacent violators) of ``correct`` on ``raw``, as interpolation knots.

    Blocks are first grown to at least ``min_block`` reads so one lucky read does not become a knot; each block
    gives a knot at its mean raw score. The map is pinned to (0, 0) and to ``ceiling`` at raw 1: no read is
    ever certain.
    """
    if len(raw) != len(correct) or not raw:
        raise ValueError("need as many outcomes as scores, and at least one")
    order = np.argsort(np.asarray(raw, dtype=float), kind="stable")
    x = np.asarray(raw, dtype=float)[order]
    y = np.asarray(correct, dtype=float)[order]
    # Start from blocks of min_block consecutive reads, then pool neighbours while they decrease.
    blocks = [[float(x[i : i + min_block].sum()), float(y[i : i + min_block].sum()), len(x[i : i + min_block])]
              for i in range(0, len(x), min_block)]
    if len(blocks) > 1 and blocks[-1][2] < min_block:
        last = blocks.pop()
        blocks[-1] = [a + b for a, b in zip(blocks[-1], last, strict=True)]
    stack: list[list[float]] = []
    for b in blocks:
        stack.append(list(b))
        while len(stack) > 1 and stack[-2][1] / stack[-2][2] >= stack[-1][1] / stack[-1][2]:
            top = stack.pop()
            stack[-1] = [a + c for a, c in zip(stack[-1], top, strict=True)]
    knots = [(0.0, 0.0)]
    for sx, sy, n in stack:
        knots.append((round(sx / n, 4), round(min(ceiling, sy / n), 4)))
    knots.append((1.0, max(ceiling, knots[-1][1])))
    # Equal raw means (ties) would make the interpolation ambiguous: keep the last of each.
    out: dict[float, float] = {}
    for kx, ky in knots:
        out[kx] = max(ky, max(out.values(), default=0.0))
    return tuple(sorted(out.items()))
