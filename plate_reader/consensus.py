"""Combine several reads of the same vehicle into one: a character-wise vote weighted by confidence."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import plates

if TYPE_CHECKING:
    from .reader import PlateRead


def consensus(reads: Sequence[PlateRead]) -> PlateRead | None:
    """Vote per position among the plates of the most supported length; None when nothing was read.

    The result's confidence is the winning weight share at the weakest position times the best single-read
    confidence, so agreement raises it and disagreement lowers it.
    """
    from .reader import PlateRead

    valid = [r for r in reads if r.plate]
    if not valid:
        return None
    by_len: dict[int, float] = defaultdict(float)
    for r in valid:
        by_len[len(r.plate)] += max(r.confidence, 1e-3)  # type: ignore[arg-type]
    length = max(by_len, key=by_len.__getitem__)
    group = [r for r in valid if len(r.plate) == length]  # type: ignore[arg-type]
    chars, shares = [], []
    for i in range(length):
        votes: dict[str, float] = defaultdict(float)
        for r in group:
            w = r.char_probs[i] if r.char_probs and len(r.char_probs) == length else r.confidence
            votes[r.plate[i]] += max(w, 1e-3) * max(r.confidence, 1e-3)  # type: ignore[index]
        ch = max(votes, key=votes.__getitem__)
        chars.append(ch)
        shares.append(votes[ch] / sum(votes.values()))
    text = "".join(chars)
    if not plates.is_valid(text):
        # A vote can mix two kinds (e.g. 3rd char letter from one read, digit from another): take the best read.
        text = max(group, key=lambda r: r.confidence).plate  # type: ignore[assignment]
    agreeing = [r for r in group if r.plate == text]
    best = max(agreeing or group, key=lambda r: r.confidence)
    colors = Counter(r.color for r in valid if r.color != "unknown")
    color = colors.most_common(1)[0][0] if colors else best.color
    conf = min(shares) * max(r.confidence for r in group)
    # Several agreeing reads are stronger evidence than one.
    conf = 1 - (1 - conf) ** min(len(agreeing), 3) if agreeing else conf
    return PlateRead(
        plate=text,
        color=color,
        confidence=float(round(min(max(conf, 0.0), 1.0), 4)),
        box=best.box,
        crop=best.crop,
        char_probs=best.char_probs,
    )
