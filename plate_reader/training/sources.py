"""The public snapshots the models are trained on, pinned by commit, and their extraction to a plain folder.

``--sources DIR`` is a folder holding one git directory per repository, laid out as the ``fetch`` tool leaves
them: ``DIR/<owner>+<name>/repo`` (bare, or with a ``.git`` inside). Files are read at the pinned commit with
``git archive``/``git show``, never from a work tree, so a snapshot that moved on cannot change the data.
Everything is extracted once into ``WORK/extracted`` (a plain tree the rest of the pipeline reads); the test
suite builds such a tree directly from its own drawings.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path


class SourceMissing(RuntimeError):
    """A pinned snapshot (or a file in it) is not where the training command was told to look."""


@dataclass(frozen=True)
class Source:
    repo: str
    commit: str
    licence: str
    paths: tuple[str, ...]
    use: str

    @property
    def folder(self) -> str:
        return self.repo.replace("/", "+")


SOURCES: tuple[Source, ...] = (
    Source("yyq19990828/chinese_license_plate_generator", "62e63cc59f33b1a6d96669ff827e0083d5f97548", "MIT",
           ("font_model", "plate_model", "LICENSE"),
           "GA 36-2018 glyph images (140_* single row, 220_up/220_down/220_* double row, green_* new energy) "
           "and plate backgrounds with rivet holes and frames"),
    Source("huangxinping/chinese_license_plates", "61dd24cc34c5f60472907e32422543ffcd4994eb", "MIT",
           ("generator/images", "LICENSE"), "a second set of plate glyphs per colour (shape variety)"),
    Source("szad670401/end-to-end-for-chinese-plate-recognition", "c110ab3c605f242290c90862c5f19b15e21309d3",
           "none stated (used for training only, never redistributed)", ("font/platechar.ttf",),
           "a plate-style letter/digit font (shape variety)"),
    Source("julienkolani/ccpd-character-recognition", "0980fca3cf060d7965b4e7648d555f392721d72b",
           "MIT (CCPD)", ("TP/TP1/CCPD_SubDataset",),
           "600 real CCPD photos (blue plates), plate text and the four plate corners in each file name"),
    Source("wzh191920/License-Plate-Recognition", "34ba808ea2563b3b2ff7266b9cc6d0d9a98f52b1", "MIT",
           ("train/chars2.7z", "train/charsChinese.7z", "LICENSE"),
           "real 20x20 binarised character images cut from plates (13,163 letters/digits, 3,232 provinces)"),
)


def git_dir(sources: Path, src: Source) -> Path:
    base = Path(sources) / src.folder / "repo"
    for cand in (base / ".git", base):
        if (cand / "objects").is_dir():
            return cand
    raise SourceMissing(
        f"训练数据源缺失 / training source missing: {src.repo} @ {src.commit[:8]} — expected a git directory at "
        f"{base} (bring it with the fetch tool, or pass --sources pointing at a folder holding it)")


def _git(gd: Path, *args: str) -> bytes:
    proc = subprocess.run(["git", "--git-dir", str(gd), *args], capture_output=True)
    if proc.returncode != 0:
        raise SourceMissing(f"git {' '.join(args[:2])} failed in {gd}: {proc.stderr.decode(errors='replace')[:300]}")
    return proc.stdout


def _extract_one(sources: Path, src: Source, dest: Path) -> None:
    gd = git_dir(sources, src)
    _git(gd, "cat-file", "-e", f"{src.commit}^{{commit}}")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cleangate-src-") as tmp:
        tar_path = Path(tmp) / "a.tar"
        proc = subprocess.run(["git", "--git-dir", str(gd), "archive", "-o", str(tar_path), src.commit, *src.paths],
                              capture_output=True)
        if proc.returncode != 0:
            # A snapshot may lack its largest files; name what is missing instead of half-extracting.
            raise SourceMissing(f"{src.repo} @ {src.commit[:8]}: cannot read {src.paths} "
                                f"({proc.stderr.decode(errors='replace')[:300]})")
        with tarfile.open(tar_path) as tar:
            tar.extractall(dest, filter="data")
    for archive in sorted(dest.rglob("*.7z")):
        if shutil.which("7z") is None:
            raise SourceMissing("7z not found: install Debian's p7zip-full (apt-get install p7zip-full)")
        out = archive.with_suffix("")
        if not out.exists():
            subprocess.run(["7z", "x", "-y", f"-o{out}", str(archive)], check=True, capture_output=True)


def extract(sources: Path, work: Path) -> Path:
    """Extract every pinned source into ``work/extracted`` (idempotent: a finished source is kept)."""
    root = Path(work) / "extracted"
    for src in SOURCES:
        dest = root / src.folder
        stamp = dest / ".extracted"
        if stamp.exists() and stamp.read_text() == src.commit:
            continue
        if dest.exists():
            shutil.rmtree(dest)
        _extract_one(Path(sources), src, dest)
        stamp.write_text(src.commit)
    (root / "sources.json").write_text(json.dumps(
        [{"repo": s.repo, "commit": s.commit, "licence": s.licence, "paths": s.paths, "use": s.use}
         for s in SOURCES], ensure_ascii=False, indent=1))
    return root


def folder(extracted: Path, repo: str) -> Path:
    return Path(extracted) / repo.replace("/", "+")
