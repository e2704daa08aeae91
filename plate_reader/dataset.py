"""The labelled EasyPR photo set (../shared/data/plates/easypr) and its fixed dev/report split.

Used by the benchmark and the tests. The split ranks the files by a salted hash of their names and gives the
first half to ``dev``: fixed, exactly half-and-half, independent of the order files are listed in.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

SPLIT_SALT = "cleangate-plate-reader-split-v1"


@dataclass(frozen=True)
class Sample:
    path: Path
    plate: str
    color: str


def default_dir() -> Path:
    env = os.environ.get("CLEANGATE_EASYPR_DIR")
    if env:
        return Path(env)
    # The shared data folder sits beside the repository checkout.
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "plates" / "easypr"


def _rank_key(file_name: str) -> str:
    return hashlib.sha256(f"{SPLIT_SALT}:{file_name}".encode()).hexdigest()


def split(samples: list[Sample]) -> dict[str, list[Sample]]:
    """{'dev': may be looked at and tuned on, 'report': only reported on}; half each, in file-name order."""
    ranked = sorted(samples, key=lambda s: _rank_key(s.path.name))
    n_dev = (len(ranked) + 1) // 2
    dev = {s.path.name for s in ranked[:n_dev]}
    return {
        "dev": [s for s in samples if s.path.name in dev],
        "report": [s for s in samples if s.path.name not in dev],
    }


def load(directory: Path | None = None, half: str | None = None) -> list[Sample]:
    directory = Path(directory) if directory else default_dir()
    with open(directory / "labels.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    out = [
        Sample(directory / r["file"], r["plate"].strip(), r["color"].strip())
        for r in sorted(rows, key=lambda r: r["file"])
    ]
    if half is not None:
        if half not in ("dev", "report"):
            raise ValueError("half must be 'dev' or 'report'")
        out = split(out)[half]
    return out
