"""Builds the training and evaluation arrays: synthetic plates, CCPD crops, a gate's exported crops.

Every sample is stored twice, already prepared (uint8) for each model: the recogniser's view (double-row plates
stitched) and the kind classifier's view (the crop as the localiser gives it). Synthetic samples are built in
chunks, each seeded by (seed, chunk), so the arrays do not depend on how many worker processes ran.
"""

from __future__ import annotations

import csv
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from plate_reader import plates
from plate_reader.layout import prepare, stitch_double_row
from plate_reader.training import augment, ccpd, glyphs, province_swap, render
from plate_reader.training.spec import KIND_INPUT, LABELS, REC_INPUT, kind_of

# Trucks are what the gates exist for: double-row yellow and yellow-green get more than their road share.
KIND_WEIGHTS = {"blue": 0.18, "yellow": 0.15, "yellow_double": 0.2, "green": 0.12, "yellow_green": 0.15,
                "white": 0.1, "black": 0.1}
# Style 5 data goes to the kinds 2026.12.01-3 read worst on plates it had not seen (double-row 71% and
# yellow-green 84% on its own held-out set; worse under hard conditions).
KIND_WEIGHTS_5 = {"blue": 0.13, "yellow": 0.12, "yellow_double": 0.3, "green": 0.09, "yellow_green": 0.2,
                  "white": 0.08, "black": 0.08}
CHUNK = 500
# The newest augmentation style (augment.STYLES); cached chunks in --work are keyed by the style they were
# made with, so a new style never reads an old one's arrays. CCPD crops are degraded in style 4 throughout.
DATA_VERSION = 5
CCPD_STYLE = 4


@dataclass
class Arrays:
    rec: np.ndarray      # [N, H, W, C] uint8 (recogniser view)
    kind: np.ndarray     # [N, H, W, C] uint8 (classifier view)
    texts: list[str]
    labels: np.ndarray   # [N] int64 index into LABELS, -1 when unknown

    def __len__(self) -> int:
        return len(self.texts)

    @staticmethod
    def concat(parts: list[Arrays]) -> Arrays:
        parts = [p for p in parts if len(p)]
        return Arrays(np.concatenate([p.rec for p in parts]), np.concatenate([p.kind for p in parts]),
                      [t for p in parts for t in p.texts], np.concatenate([p.labels for p in parts]))

    def save(self, path: Path) -> None:
        np.savez(path, rec=self.rec, kind=self.kind, texts=np.array(self.texts), labels=self.labels)

    @staticmethod
    def load(path: Path) -> Arrays:
        z = np.load(path)
        return Arrays(z["rec"], z["kind"], [str(t) for t in z["texts"]], z["labels"])


def views(crop: np.ndarray, double: bool) -> tuple[np.ndarray, np.ndarray]:
    rec = prepare(stitch_double_row(crop) if double else crop, REC_INPUT)
    return rec, prepare(crop, KIND_INPUT)


_BANK: glyphs.GlyphBank | None = None


def _init(bank: glyphs.GlyphBank) -> None:
    global _BANK
    _BANK = bank


def _chunk(args: tuple[int, int, int, float, int, float | None]) -> Arrays:
    seed, chunk, n, hard, style, font_share = args
    rng = np.random.default_rng([seed, chunk])
    weights = KIND_WEIGHTS_5 if style >= 5 else KIND_WEIGHTS
    kinds = list(weights)
    p = np.array([weights[k] for k in kinds])
    recs, kinds_v, texts, labels = [], [], [], []
    # Style 6 draws in SYSTEM_FONTS only, whatever else the bank holds (so its data stay as they were made);
    # style 7 in every training font, on more plates; an explicit ``font_share`` in all the bank's fonts.
    names = glyphs.font_sets(_BANK, glyphs.SYSTEM_FONTS) if style == 6 and font_share is None else None
    share = font_share if font_share is not None else (render.FONT_PLATES_7 if style >= 7 else render.FONT_PLATES)
    for _ in range(n):
        kind = str(rng.choice(kinds, p=p / p.sum()))
        plate = render.render_plate(_BANK, rng, kind, fonts=style >= 6, font_share=share, font_names=names,
                                    rows_variety=style >= 8)
        # Easy and hard crops mixed: a model that only ever sees worst cases learns clean plates slowly.
        crop = augment.camera_crop(plate.image, rng, hard * float(rng.uniform(0.4, 1.1)), style)
        r, k = views(crop, plate.double)
        recs.append(r)
        kinds_v.append(k)
        texts.append(plate.text)
        labels.append(LABELS.index(kind))
    return Arrays(np.stack(recs), np.stack(kinds_v), texts, np.array(labels, np.int64))


def synthetic(bank: glyphs.GlyphBank, n: int, seed: int, hard: float = 1.0, workers: int = 2,
              cache: Path | None = None, style: int = 4, font_share: float | None = None) -> Arrays:
    """``n`` rendered samples in augmentation ``style``. With ``cache``, each chunk is kept there, so a larger
    run with the same seed reuses the chunks a smaller one already rendered (chunk c is the same whatever ``n``
    is). ``font_share`` (style 6): the share of plates drawn in one of the bank's fonts (render.FONT_PLATES);
    the cache keys a chunk by it, and by the bank's font sets, so the unseen-font set never meets another."""
    if style not in augment.STYLES:
        raise ValueError(f"unknown augmentation style {style} (known: {augment.STYLES})")
    jobs = [(seed, c, min(CHUNK, n - c * CHUNK), hard, style, font_share) for c in range((n + CHUNK - 1) // CHUNK)]
    tag = "" if font_share is None else f"-f{font_share}-" + "+".join(n[5:] for n in glyphs.font_sets(bank))
    paths = {j: Path(cache) / f"chunk-v{style}-{seed}-{j[1]}-{j[2]}-{hard}{tag}.npz" for j in jobs} if cache else {}
    done = {j: Arrays.load(p) for j, p in paths.items() if p.exists()}
    todo = [j for j in jobs if j not in done]
    cv2.setNumThreads(1)
    if workers <= 1 or len(todo) <= 1:
        _init(bank)
        made = [_chunk(j) for j in todo]
    else:
        with mp.get_context("fork").Pool(workers, initializer=_init, initargs=(bank,)) as pool:
            made = pool.map(_chunk, todo)
    for j, arrays in zip(todo, made, strict=True):
        done[j] = arrays
        if cache:
            arrays.save(paths[j])
    return Arrays.concat([done[j] for j in jobs])


def ccpd_crops(root: Path, names: list[str], copies: int, seed: int, jitter: bool = True, swap: float = 0.0,
               bank: glyphs.GlyphBank | None = None) -> Arrays:
    """Crops of the named CCPD photos: ``copies`` jittered localiser crops each (or one exact one).

    With ``swap`` > 0 (and the glyph ``bank``), that share of the copies have their province glyph replaced by
    another province's in the photo before the crop is cut (province_swap.py): CCPD is 98% 皖. The swaps draw
    from their own random stream, so the crops' jitter and degradation are those of ``swap=0``.
    """
    if swap and bank is None:
        raise ValueError("a province swap needs the glyph bank")
    rng = np.random.default_rng([seed, 7])
    rng_swap = np.random.default_rng([seed, 13])
    recs, kinds_v, texts = [], [], []
    for name in names:
        photo = ccpd.read_photo(Path(root) / name)
        plate, quad = ccpd.parse_name(Path(name).name)
        for _ in range(copies):
            img, text = photo, plate
            if swap and rng_swap.random() < swap:
                img, text = province_swap.swap_province(photo, quad, plate, bank, rng_swap)
            crop = ccpd.rectify(img, quad, rng if jitter else None)
            if jitter:
                crop = augment.degrade(crop, rng, hard=0.4, style=CCPD_STYLE)
            r, k = views(crop, False)
            recs.append(r)
            kinds_v.append(k)
            texts.append(text)
    labels = np.full(len(texts), LABELS.index("blue"), np.int64)
    if not texts:
        return _empty()
    return Arrays(np.stack(recs), np.stack(kinds_v), texts, labels)


def _empty() -> Arrays:
    h, w, c = REC_INPUT["height"], REC_INPUT["width"], REC_INPUT["channels"]
    kh, kw, kc = KIND_INPUT["height"], KIND_INPUT["width"], KIND_INPUT["channels"]
    return Arrays(np.zeros((0, h, w, c), np.uint8), np.zeros((0, kh, kw, kc), np.uint8), [],
                  np.zeros(0, np.int64))


def gate_crops(folder: Path, copies: int, seed: int) -> Arrays:
    """A ``gate-service crops export`` folder (labels.csv + crops/): the site's own plates, for fine-tuning.

    Rows whose plate is not a valid GA 36 plate are skipped; ``camera`` labels (nobody checked them) are kept
    but only corrected/guard-checked rows are oversampled.
    """
    folder = Path(folder)
    rng = np.random.default_rng([seed, 11])
    recs, kinds_v, texts, labels = [], [], [], []
    with open(folder / "labels.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        text = plates.normalize(row.get("plate", ""))
        if not plates.is_valid(text):
            continue
        img = cv2.imdecode(np.fromfile(str(folder / row["file"]), dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            continue
        aspect = img.shape[1] / max(1, img.shape[0])
        kind = kind_of(text, row.get("color", ""), aspect)
        double = kind == "yellow_double"
        n = copies if row.get("label_source") in ("corrected", "guard_checked") else max(1, copies // 2)
        for i in range(n):
            crop = img if i == 0 else augment.degrade(img, rng, hard=0.3)
            r, k = views(crop, double)
            recs.append(r)
            kinds_v.append(k)
            texts.append(text)
            labels.append(LABELS.index(kind) if kind else -1)
    if not texts:
        return _empty()
    return Arrays(np.stack(recs), np.stack(kinds_v), texts, np.array(labels, np.int64))
