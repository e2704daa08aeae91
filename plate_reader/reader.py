"""The plate reader: locate → rectify → kind/colour → constrained recognition, with a PP-OCR det fallback.

Engines (``PlateReader(engine=...)``): ``own`` — the project's recogniser and kind classifier
(plate_reader/weights); ``ppocr`` (formerly ``onnx``) — PP-OCRv4's recogniser with HSV colour; ``combined`` — both
recognisers as a product of experts over the same template (experts.py); ``paddle`` — PaddleOCR 3.x.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import plates
from .calibration import REFERENCE, ConfidenceMap, maps_for, stale
from .color import classify_color, color_fractions, reconcile
from .consensus import consensus
from .image import ImageError, as_bgr, decode_image
from .locate import Candidate, _iou, find_candidates, rectify, refine_quad
from .thresholds import FALLBACK, FALLBACK_COLOR_TRUST, FALLBACK_EXPERT_BELOW, thresholds_for

__all__ = ["PlateRead", "PlateReader", "ImageError", "decode_image", "consensus", "ENGINES", "DEFAULT_ENGINE"]

ENGINES = ("own", "ppocr", "combined", "paddle")
# The engine a reader runs when none is named (the service's CLEANGATE_PLATE_ENGINE default too). Still PP-OCRv4:
# with own models 2026.12.01-3 (benchmarks/plate_reader.py and ingest.py, same run, 2026-12-01 23:30) own reads
# EasyPR's report half 83.9% and combined 87.5% against ppocr's 92.9%, and the hard synthetic set 51.3% / 75.5%
# against 76.7%, though at the gate (4 kiosks x 5 fps) own got 44 right passages as ppocr did, at p50 0.22x.
DEFAULT_ENGINE = "ppocr"
_ALIASES = {"onnx": "ppocr"}  # the PP-OCRv4 engine's name before the project had models of its own
PPOCR_VERSION = "PP-OCRv4 mobile rec (rapidocr-onnxruntime 1.4.4)"


@dataclass
class PlateRead:
    plate: str | None
    color: str
    confidence: float
    box: tuple[int, int, int, int] | None  # x, y, w, h in frame pixels
    crop: np.ndarray | None = None  # rectified plate crop (BGR) for snapshots
    char_probs: list[float] | None = None
    kind: str | None = None
    # The probability that ``plate`` is exactly right (see calibration.py); None when there is no plate, or
    # for the paddle engine, whose scores are not fitted. ``confidence`` is the evidence score on PP-OCRv4's
    # scale whichever engine read (calibration.py): the reader's and the gate tracker's thresholds are set in it.
    probability: float | None = None


# Plate kinds each background colour may carry; a read of another kind must beat these by a margin.
_KINDS_BY_COLOR = {c: plates.kind_for_color(c) for c in plates.COLORS}
_COLOR_MISMATCH_PENALTY = 0.08  # in mean log-probability per CTC frame
# Decoding templates: the six 7-character suffix kinds share one template whose last slot takes any suffix,
# which cuts the Viterbi work; the result is re-parsed to name its kind (and drop e.g. 港 without 粤Z).
_SUFFIX7 = plates.Template("suffixed", (plates.PROVINCES, plates.AUTHORITY) + (plates.ALNUM,) * 4 + ("挂学警港澳领",))
DECODE_TEMPLATES = tuple(t for t in plates.TEMPLATES if t.kind in ("ordinary", "new_energy_small",
                                                                   "new_energy_large", "embassy")) + (_SUFFIX7,)
_DECODE_SLOTS = [t.slots for t in DECODE_TEMPLATES]
# Double-row plates: the 7-character templates, each distinct slot list once (province+letter over five).
_DOUBLE_TEMPLATES = tuple(t for i, t in enumerate(DECODE_TEMPLATES) if len(t) == 7 and t.kind != "embassy"
                          and all(u.slots != t.slots for u in DECODE_TEMPLATES[:i]))
_DOUBLE_SLOTS = [t.slots for t in _DOUBLE_TEMPLATES]
# own/combined engines: the kind classifier's colour is taken when it is at least this sure, else the HSV one;
# combined: PP-OCRv4 is asked only about crops the own models read below EXPERT_BELOW. Both are derived for each
# set of weights (benchmarks/derive_thresholds.py, stored in calibration.json: thresholds.py); these constants
# are only the fallback when no stored entry fits the models running (they were set on the EasyPR dev half).
COLOR_TRUST = FALLBACK_COLOR_TRUST
EXPERT_BELOW = FALLBACK_EXPERT_BELOW
# An image this wide for its height, filled by a plate colour (or this small), is a plate crop: read as one.
CROP_ASPECT = (1.8, 5.5)
CROP_MAX_HEIGHT = 160
CROP_MIN_FILL = 0.35
# A read this confident ends the search: later (lower-scored) candidates are not recognised at all.
STOP_AT = 0.8
# Below this (calibrated) confidence the colour/edge candidates are not trusted and PP-OCR det is tried too.
FALLBACK_BELOW = 0.55
# Below this confidence the winning plate is read a few more ways (margins below, the straightened crop) and the
# reads vote per character with their pooled probability mass (the province above all).
ENSEMBLE_BELOW = 0.9
ENSEMBLE_MARGINS = ((0.02, 0.06), (0.12, 0.28))
# …and the winning crop once more at this fraction of the usual horizontal stretch (0: not).
ENSEMBLE_STRETCH = 0.7


def looks_like_crop(frame: np.ndarray) -> bool:
    """A plate crop rather than a scene: plate-shaped, and small or mostly one plate colour."""
    h, w = frame.shape[:2]
    if not CROP_ASPECT[0] <= w / max(h, 1) <= CROP_ASPECT[1]:
        return False
    if h <= CROP_MAX_HEIGHT:
        return True
    # A big image must be mostly one plate background: only the saturated ones count, since dark night scenes
    # and grey skies are "black" and "white" too.
    f = color_fractions(frame)
    return max(f["blue"], f["yellow"], f["green"]) >= CROP_MIN_FILL


def _better(a: PlateRead | None, b: PlateRead | None) -> PlateRead | None:
    if b is None or not b.plate:
        return a
    if a is None or not a.plate:
        return b
    return b if b.confidence > a.confidence else a


def _calibrate(min_prob: float, score: float) -> float:
    """Map raw evidence to 0–1: the weakest character's probability, discounted by a poor overall alignment."""
    return float(min(1.0, max(0.0, min_prob * math.exp(min(0.0, score + 0.05) * 2.0))))


@dataclass
class _Attempt:
    cand: Candidate
    crop: np.ndarray
    color: str
    double: bool
    parts: tuple[int, ...]  # indices into the batch of crops sent to the recogniser
    # Set by the decoder for the per-character ensemble: per position, the slot's allowed dictionary indices and
    # their probabilities on that position's frames (onnx engine only).
    slot_probs: list | None = None
    refined: bool = False  # the second-pass (straightened, tightened) crop
    guess: object | None = None  # own/combined engines: the kind classifier's KindGuess for the crop


_Sink = list[tuple[PlateRead, _Attempt]]


class PlateReader:
    """Reusable and thread-safe: sessions are created once; each ``read`` keeps its state on the stack."""

    def __init__(self, engine: str = DEFAULT_ENGINE, threads: int = 1, *, province_prior: bool = True,
                 fallback: bool = True, stretch: float = 2.0, max_candidates: int = 6,
                 det_side: int = 960, refine: bool = True, ensemble: bool = True,
                 fallback_below: float = FALLBACK_BELOW, ensemble_below: float = ENSEMBLE_BELOW,
                 local_provinces: str = "", local_weight: float = 4.0, weights: Path | None = None,
                 color_source: str = "fused", crop_as_crop: bool = True, expert_below: float | None = None,
                 calibrated: bool = True) -> None:
        engine = _ALIASES.get(engine, engine)
        self.recognizer = self.paddle = self.kinds = self.expert = None
        if engine in ("ppocr", "combined"):
            from .recognize import Recognizer

            # local_provinces: an optional per-gate prior on the province character (not the paddle engine).
            ppocr = Recognizer(threads, local_provinces=local_provinces, local_weight=local_weight)
            self.recognizer = ppocr
        if engine in ("own", "combined"):
            from .own_engine import KindClassifier, OwnRecognizer

            # The own recogniser finds and reads the candidates; in ``combined`` PP-OCRv4 is the second expert.
            self.expert = self.recognizer
            self.recognizer = OwnRecognizer(threads, local_provinces, local_weight, directory=weights)
            self.kinds = KindClassifier(threads, directory=weights)
        elif engine == "paddle":
            # PaddleOCR 3.x on the same shipped ONNX files (the [paddle] extra); text + score, no per-char probs.
            from .paddle_backend import PaddleEngine

            self.paddle = PaddleEngine(threads)
        elif engine != "ppocr":
            raise ValueError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
        if color_source not in ("fused", "model", "hsv"):
            raise ValueError("color_source must be 'fused', 'model' or 'hsv'")
        self.engine = engine
        # calibrated=False: raw scores throughout (benchmarks/calibrate_confidence.py fits the maps on them).
        self._maps: dict[str, ConfidenceMap] = {}
        self._reference: ConfidenceMap | None = None
        if calibrated and engine != "paddle":
            self._load_maps()
        self.color_source = color_source
        self.crop_as_crop = crop_as_crop
        # own/combined: the thresholds derived for these very models, else the fallback (``calibration`` says
        # which). combined consults PP-OCRv4 only for crops the own models read below expert_below (> 1: all); a
        # value given here wins (the benchmarks sweep it).
        self.thresholds = thresholds_for(engine, self.fingerprint) if self.kinds is not None else FALLBACK
        self.color_trust = self.thresholds.color_trust
        self.expert_below = self.thresholds.expert_below if expert_below is None else expert_below
        self.threads = threads
        self.province_prior = province_prior
        self.fallback = fallback
        self.stretch = stretch
        self.max_candidates = max_candidates
        self.det_side = det_side
        self.refine = refine
        self.ensemble = ensemble
        self.fallback_below = fallback_below
        self.ensemble_below = ensemble_below
        self.ensemble_margins = ENSEMBLE_MARGINS
        # The own recogniser's input width is fixed: a squeezed copy is the same input.
        self.ensemble_stretch = ENSEMBLE_STRETCH if self.kinds is None else 0.0
        self._detector = None
        self._det_lock = threading.Lock()

    @property
    def detector(self):
        with self._det_lock:
            if self._detector is None:
                from .detect import Detector

                self._detector = Detector(self.threads, side=self.det_side)
            return self._detector

    @property
    def fingerprint(self) -> dict[str, str]:
        """``models`` plus the own ONNX files' digests: what a confidence map is fitted for."""
        from .own_engine import versions

        out = self.models
        if self.kinds is not None:
            out.update(versions(self.recognizer, self.kinds, digests=True))
        return out

    def _load_maps(self) -> None:
        models = self.fingerprint
        engine_map, self._reference = maps_for(self.engine, models)
        if engine_map is not None:
            self._maps[self.engine] = engine_map
        if self.engine == "combined":
            # Crops the own models read surely enough are never shown to PP-OCRv4: those reads are the own
            # engine's, on its map.
            own, _ = maps_for("own", {k: v for k, v in models.items() if not k.startswith("ppocr")})
            if own is not None:
                self._maps["own"] = own

    def _scale(self, raw: float, path: str) -> float:
        """A raw score of one decoding path (``own``, ``combined``, ``ppocr``) on the reference scale."""
        m = self._maps.get(path)
        return raw if m is None else m.to_reference(raw, self._reference)

    @property
    def calibration(self) -> dict[str, dict]:
        """The confidence maps in use: per decoding path, the model versions each was fitted for and whether
        they are the ones running (``plate-reader read`` reports it as "current" or "stale"); for the own and
        combined engines also the thresholds in use (``"thresholds"``, thresholds.py)."""
        models = self.fingerprint
        out = {path: {"fitted_for": m.models, "current": not stale(m, {k: models[k] for k in m.models
                                                                        if k in models})}
               for path, m in self._maps.items()}
        if self.kinds is not None:
            # The colour-trust / expert thresholds: "current" when derived for these models, else the fallback.
            out["thresholds"] = self.thresholds.info()
        return out

    @property
    def models(self) -> dict[str, str]:
        """The models this reader runs and their versions (``plate-reader read`` reports them)."""
        from .own_engine import versions

        out = versions(self.recognizer, self.kinds) if self.kinds is not None else {}
        if self.engine in ("ppocr", "combined"):
            out["ppocr_rec"] = PPOCR_VERSION
        if self.paddle is not None:
            out["paddle"] = "PaddleOCR 3.x on " + PPOCR_VERSION
        return out

    # -- public --------------------------------------------------------------------------------------------
    def read(self, image: np.ndarray | bytes, *, fallback: bool | None = None, quick: bool = False) -> PlateRead:
        """Read the frame's plate. ``fallback`` overrides the reader's own setting for this call: a live
        caller that saw no plate in the last frames can skip the costly text-detection pass.

        ``quick`` reads only the colour/edge candidates once each (no text detection, no second pass, no
        ensemble): about half the work on the dev photos (mean 60 vs 110 ms), for a live caller that already knows
        the vehicle in view and only needs to see that it is still there."""
        frame = decode_image(image) if isinstance(image, (bytes, bytearray, memoryview)) else as_bgr(image)
        crop_read = None
        if self.crop_as_crop and looks_like_crop(frame):
            # Already a plate crop (a camera's plate thumbnail): read it whole rather than search inside it.
            crop_read = self.read_crop(frame)
            if crop_read.plate and crop_read.confidence >= self.fallback_below:
                return crop_read
        if quick:
            return self._finish(_better(self._read_candidates(frame, find_candidates(frame, self.max_candidates),
                                                               refine=False), crop_read))
        # Every read of the onnx engine is kept (with its attempt) for the per-character ensemble.
        reads: _Sink | None = [] if self.ensemble and self.paddle is None else None
        best = self._read_candidates(frame, find_candidates(frame, self.max_candidates), sink=reads)
        use_fallback = self.fallback if fallback is None else fallback
        if use_fallback and (best is None or best.confidence < self.fallback_below):
            other = self._paddle_frame(frame) if self.paddle is not None else \
                self._read_candidates(frame, self.detector.find(frame), sink=reads)
            if other is not None and (best is None or other.confidence > best.confidence):
                best = other
        if reads is not None and best is not None and best.confidence < self.ensemble_below:
            best = self._ensemble(frame, best, reads)
        return self._finish(_better(best, crop_read))

    def _finish(self, read: PlateRead | None, color: str = "unknown") -> PlateRead:
        if read is None or not read.plate:
            return read or PlateRead(plate=None, color=color, confidence=0.0, box=None)
        if self._reference is not None:
            read.probability = round(self._reference.probability(read.confidence), 4)
        return read

    def read_crop(self, crop: np.ndarray) -> PlateRead:
        """Read an already cut-out plate (e.g. a camera's own plate thumbnail)."""
        crop = as_bgr(crop)
        h, w = crop.shape[:2]
        quad = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float32)
        cand = Candidate(quad, "crop", 1.0, w / max(h, 1))
        r = self._read_candidates(crop, [cand], pad=False)
        return self._finish(r, classify_color(crop) if r is None else "unknown")

    # -- internals -----------------------------------------------------------------------------------------
    def _read_candidates(self, frame: np.ndarray, cands: Sequence[Candidate], pad: bool = True,
                         sink: _Sink | None = None, refine: bool = True) -> PlateRead | None:
        best: PlateRead | None = None
        # Recognise the best-scored candidates first, two at a time, and stop once one reads confidently.
        for i in range(0, len(cands), 2):
            read = self._read_batch(frame, cands[i : i + 2], pad, sink)
            if read is not None and (best is None or read.confidence > best.confidence):
                best = read
            if pad and refine and self.refine and (best is None or best.confidence < STOP_AT):
                # Not confident yet: straighten and tighten these candidates (second pass) and read again.
                read = self._read_refined(frame, cands[i : i + 2], sink)
                if read is not None and (best is None or read.confidence > best.confidence):
                    best = read
            if best is not None and best.confidence >= STOP_AT:
                break
        return best

    def _ensemble(self, frame: np.ndarray, best: PlateRead, reads: _Sink) -> PlateRead:
        """Read the winning plate a few more ways and vote per character, pooling probability mass."""
        won = next((att for r, att in reads if r is best), None)
        if won is None or won.double or not best.plate:
            return best
        quad = won.cand.quad
        cand = Candidate(quad, "variant", 1.0, 4.0)
        images, attempts = [], []
        for px, py in self.ensemble_margins:
            crop = rectify(frame, quad, pad_x=px, pad_y=py, out_h=64)
            images.append(crop)
            attempts.append(_Attempt(cand, crop, classify_color(crop), False, (len(images) - 1,)))
        extra: _Sink = []
        self._recognise(images, attempts, extra)
        if self.ensemble_stretch:
            # The winning crop again, squeezed: a different CTC alignment of the same pixels.
            att = _Attempt(cand, won.crop, won.color, False, (0,))
            read = self._decode(att, self.recognizer.probs([won.crop], stretch=self.stretch * self.ensemble_stretch))
            if read is not None:
                extra.append((read, att))
        refined = any(att.refined and _iou(r.box, best.box) >= 0.5 for r, att in reads)
        if self.refine and not refined:
            self._read_refined(frame, [Candidate(quad, "variant", 1.0, 4.0)], extra)
        pool = [(r, att.slot_probs) for r, att in reads + extra if att.slot_probs and not att.double and r.plate
                and len(r.plate) == len(best.plate)
                and sum(a != b for a, b in zip(r.plate, best.plate, strict=True)) <= 2
                and _iou(r.box, best.box) >= 0.3]
        # The same crop may come back from several candidates: count each distinct read once.
        pool = list({(r.plate, r.confidence, r.box): (r, sp) for r, sp in pool}.values())
        if len(pool) < 2:
            return best
        chars = self.recognizer.chars
        # Each read votes with its calibrated confidence (its weakest character), spread over its per-position
        # probability mass, so a confident variant outvotes several shaky ones that agree.
        weights = [max(r.confidence, 0.01) for r, _ in pool]
        total = sum(weights)
        text, shares = [], []
        for i in range(len(best.plate)):
            mass: dict[int, float] = {}
            for (_, slot_probs), w in zip(pool, weights, strict=True):
                idx, pr = slot_probs[i]
                for k, v in zip(idx.tolist(), pr.tolist(), strict=True):
                    mass[k] = mass.get(k, 0.0) + w * v
            k = max(mass, key=mass.__getitem__)
            text.append(chars[k])
            shares.append(mass[k] / total)
        plate = "".join(text)
        if plate == best.plate or not plates.is_valid(plate):
            return best
        agreeing = [r for r, _ in pool if r.plate == plate]
        base = max(agreeing, key=lambda r: r.confidence) if agreeing else best
        conf = base.confidence if agreeing else min(best.confidence, min(shares))
        kind = plates.parse(plate).kind
        return PlateRead(plate=plate, color=reconcile(base.color, kind, base.crop), confidence=round(conf, 4),
                         box=base.box, crop=base.crop, char_probs=[round(c, 4) for c in shares], kind=kind)

    def _read_refined(self, frame: np.ndarray, cands: Sequence[Candidate],
                      sink: _Sink | None = None) -> PlateRead | None:
        images: list[np.ndarray] = []
        attempts: list[_Attempt] = []
        for cand in cands:
            rq = refine_quad(frame, cand.quad) if cand.aspect >= 1.5 else None
            if rq is None:
                continue
            crop = rectify(frame, rq, pad_x=0.03, pad_y=0.06, out_h=64)
            images.append(crop)
            attempts.append(_Attempt(Candidate(rq, cand.source, cand.score, cand.aspect), crop,
                                     classify_color(crop), False, (len(images) - 1,), refined=True))
        return self._recognise(images, attempts, sink)

    def _recognise(self, images: list[np.ndarray], attempts: list[_Attempt],
                   sink: _Sink | None = None) -> PlateRead | None:
        if not images:
            return None
        if self.paddle is not None:
            texts = self.paddle.recognize(images)
            decode = self._decode_text
        elif self.kinds is not None:
            texts = self._own_probs(images, attempts)
            decode = self._decode_own
        else:
            texts = self.recognizer.probs(images, stretch=self.stretch)
            decode = self._decode
        best: PlateRead | None = None
        for att in attempts:
            read = decode(att, texts)
            if read is not None and sink is not None:
                sink.append((read, att))
            if read is not None and (best is None or read.confidence > best.confidence):
                best = read
        return best

    def _read_batch(self, frame: np.ndarray, cands: Sequence[Candidate], pad: bool,
                    sink: _Sink | None = None) -> PlateRead | None:
        images: list[np.ndarray] = []
        attempts: list[_Attempt] = []
        for cand in cands:
            if pad:
                crop = rectify(frame, cand.quad, out_h=64)
            else:
                crop = frame
            color = classify_color(crop)
            images.append(crop)
            attempts.append(_Attempt(cand, crop, color, False, (len(images) - 1,)))
            if self.kinds is not None:
                # The kind classifier tells double-row plates (see _recognise); only the yellow truck whose
                # edge blob is the big bottom row alone needs the plate grown upwards first, as below.
                if pad and 3.4 <= cand.aspect <= 5.8 and color == "yellow":
                    tl, tr, br, bl = cand.quad
                    up = (bl - tl) * 0.8
                    tall_quad = np.array([tl - up, tr - up, br, bl], dtype=np.float32)
                    tall = rectify(frame, tall_quad, out_h=64)
                    images.append(tall)
                    attempts.append(_Attempt(Candidate(tall_quad, cand.source, cand.score, cand.aspect / 1.8),
                                             tall, color, False, (len(images) - 1,)))
                continue
            double_quad = None
            # Rear truck plates: two rows, province+letter above five characters.
            if cand.aspect < 2.6 and color in ("yellow", "unknown", "white", "green", "yellow-green"):
                double_quad = cand.quad
            elif pad and 3.4 <= cand.aspect <= 5.8 and color == "yellow":
                # On a yellow-ish truck the colour mask fails and the edge blob is only the big bottom row:
                # the smaller top row sits about 0.8 of that row's height above it.
                tl, tr, br, bl = cand.quad
                up = (bl - tl) * 0.8
                double_quad = np.array([tl - up, tr - up, br, bl], dtype=np.float32)
            if double_quad is not None:
                tall = rectify(frame, double_quad, out_h=128, pad_y=0.06) if pad else frame
                th = tall.shape[0]
                top = tall[: int(th * 0.42)]
                bottom = tall[int(th * 0.34) :]
                # The top row's two characters sit in the middle of the plate.
                tw = top.shape[1]
                top = top[:, int(tw * 0.18) : int(tw * 0.82)]
                if self.paddle is not None:
                    # PaddleOCR's decoder drops characters of the short top row; stitched to the left of the
                    # bottom row at the same height, the two rows read as one single-row plate.
                    import cv2

                    bh = bottom.shape[0]
                    top = cv2.resize(top, (max(8, round(top.shape[1] * bh / max(top.shape[0], 1))), bh))
                    images.append(np.hstack([top, bottom]))
                    attempts.append(_Attempt(cand, tall, color, True, (len(images) - 1,)))
                else:
                    images += [top, bottom]
                    attempts.append(_Attempt(cand, tall, color, True, (len(images) - 2, len(images) - 1)))
        return self._recognise(images, attempts, sink)

    def _kinds_ok(self, kind: str, color: str) -> bool:
        if kind == "suffixed":  # trailer/learner are yellow, police white, 港澳领 black
            return color in ("unknown", "yellow", "white", "black")
        return color == "unknown" or kind in _KINDS_BY_COLOR.get(color, ())

    # -- paddle engine: text + one score per crop ---------------------------------------------------------
    def _repair(self, text: str, color: str) -> tuple[str, int] | None:
        """Grammar repair, preferring the kinds the plate's colour allows; returns (plate, substitutions)."""
        text = plates.normalize(text)
        for kinds in ((_KINDS_BY_COLOR.get(color) if color != "unknown" else None), None):
            fixed = plates.repair(text, kinds=kinds)
            if fixed is not None:
                fixes = sum(a != b for a, b in zip(fixed, text, strict=False))
                return fixed, fixes + (0 if kinds is not None or color == "unknown" else 1)
        return None

    def _decode_text(self, att: _Attempt, texts: list[tuple[str, float]]) -> PlateRead | None:
        text, score = texts[att.parts[0]]  # double-row plates arrive as one stitched line
        return self._text_read(text, score, att.color, att.cand.box, att.crop)

    def _text_read(self, text: str, score: float, color: str, box, crop) -> PlateRead | None:
        got = self._repair(text, color)
        if got is None:
            return None
        plate, fixes = got
        kind = plates.parse(plate).kind
        # Each grammar substitution is evidence the model was unsure: discount the line score for it.
        conf = float(min(1.0, max(0.0, score))) * (0.85 ** fixes)
        return PlateRead(plate=plate, color=reconcile(color, kind, crop) if crop is not None else color,
                         confidence=round(conf, 4), box=box, crop=crop,
                         char_probs=[round(float(score), 4)] * len(plate), kind=kind)

    def _paddle_frame(self, frame: np.ndarray) -> PlateRead | None:
        """Whole-frame PaddleOCR det+rec (the paddle engine's fallback), on the frame shrunk to ``det_side``."""
        import cv2

        H, W = frame.shape[:2]
        s = min(1.0, self.det_side / max(H, W))
        small = cv2.resize(frame, (round(W * s), round(H * s)), interpolation=cv2.INTER_AREA) if s < 1 else frame
        best: PlateRead | None = None
        for quad, text, score in self.paddle.ocr_frame(small):
            if len(quad) != 4:
                continue
            quad = quad / s
            crop = rectify(frame, quad, pad_x=0.0, pad_y=0.0)
            x0, y0 = quad.min(0)
            x1, y1 = quad.max(0)
            box = (int(x0), int(y0), int(round(x1 - x0)), int(round(y1 - y0)))
            read = self._text_read(text, score, classify_color(crop), box, crop)
            if read is not None and (best is None or read.confidence > best.confidence):
                best = read
        return best

    # -- own and combined engines: kind classifier, then the own recogniser (and PP-OCRv4 as second expert) -
    def _own_probs(self, images: list[np.ndarray], attempts: list[_Attempt]):
        """Classify each crop's kind, stitching double-row plates into one row, then run the recogniser(s)."""
        from .layout import stitch_double_row

        for att, guess in zip(attempts, self.kinds.classify([att.crop for att in attempts]), strict=True):
            att.guess = guess
            if self._trust(guess):
                att.color = guess.color
            if guess.double and not att.double:
                images[att.parts[0]] = stitch_double_row(att.crop)
                att.double = True
        return self.recognizer.probs(images), images, {}

    def _trust(self, guess) -> bool:
        """Whether the kind classifier's colour stands (else the HSV colour of the crop does)."""
        if guess is None or self.color_source == "hsv":
            return False
        return self.color_source == "model" or guess.prob >= self.color_trust

    def _own_penalty(self, kind: str, att: _Attempt) -> float:
        if not self._trust(att.guess):
            return 0.0 if self._kinds_ok(kind, att.color) else _COLOR_MISMATCH_PENALTY
        # The classifier's probability that the plate has a colour this kind may carry.
        colors = ("yellow", "white", "black") if kind == "suffixed" else plates.expected_colors(kind)
        return _COLOR_MISMATCH_PENALTY * (1.0 - min(1.0, sum(att.guess.color_prob(c) for c in colors)))

    def _decode_own(self, att: _Attempt, texts) -> PlateRead | None:
        from .experts import combine

        own, images, expert = texts
        k = att.parts[0]
        rec = self.recognizer
        templates, slots = (_DOUBLE_TEMPLATES, _DOUBLE_SLOTS) if att.double else (DECODE_TEMPLATES, _DECODE_SLOTS)
        # Not text of plate length: skip the Viterbi work.
        first = rec.constrained_many(own[k], slots) if 4 <= len(rec.greedy(own[k]).text) <= 11 else None
        read = self._own_best(att, templates, first, "own") if first is not None else None
        if self.expert is None or (read is not None and read.confidence >= self.expert_below):
            return read
        # PP-OCRv4 as the second expert (on this crop only, once): both reads of each template are combined.
        if k not in expert:
            expert[k] = self.expert.probs([images[k]], stretch=self.stretch)[0]
        if not 4 <= len(self.expert.greedy(expert[k]).text) <= 11 and read is None:
            return None
        second = self.expert.constrained_many(expert[k], slots)
        if first is None:
            first = rec.constrained_many(own[k], slots)
        return self._own_best(att, templates, [combine(a, b, rec.chars, self.expert.chars, rec.index)
                                               for a, b in zip(first, second, strict=True)], "combined") or read

    def _own_best(self, att: _Attempt, templates, reads, path: str) -> PlateRead | None:
        best = None
        for t, r in zip(templates, reads, strict=True):
            if r is None:
                continue
            adj = r.score - self._own_penalty(t.kind, att)
            if best is None or adj > best[0]:
                best = (adj, r)
        if best is None:
            return None
        r = best[1]
        try:
            kind = plates.parse(r.text).kind
        except plates.InvalidPlate:
            return None
        att.slot_probs = r.slot_probs
        color = att.color if self._trust(att.guess) else reconcile(att.color, kind, att.crop)
        conf = self._scale(_calibrate(min(r.char_probs), r.score), path)
        return PlateRead(plate=r.text, color=color, confidence=round(conf, 4),
                         box=att.cand.box, crop=att.crop, char_probs=[round(c, 4) for c in r.char_probs],
                         kind=kind)

    def _decode(self, att: _Attempt, probs: list[np.ndarray]) -> PlateRead | None:
        rec = self.recognizer
        best = None  # (adjusted score, text, char_probs, kind, raw score)
        if att.double:
            p_top, p_bottom = probs[att.parts[0]], probs[att.parts[1]]
            tops = rec.constrained_many(p_top, [t.slots[:2] for t in _DOUBLE_TEMPLATES])
            bots = rec.constrained_many(p_bottom, [t.slots[2:] for t in _DOUBLE_TEMPLATES])
            for t, top, bot in zip(_DOUBLE_TEMPLATES, tops, bots, strict=True):
                if top is None or bot is None:
                    continue
                score = (top.score + bot.score) / 2
                adj = score - (0 if self._kinds_ok(t.kind, att.color) else _COLOR_MISMATCH_PENALTY)
                if best is None or adj > best[0]:
                    best = (adj, top.text + bot.text, top.char_probs + bot.char_probs, t.kind, score,
                            (top.slot_probs or []) + (bot.slot_probs or []))
        else:
            p = probs[att.parts[0]]
            g = rec.greedy(p)
            if not 4 <= len(g.text) <= 11:
                return None  # not text of plate length: skip the Viterbi work
            if self.province_prior:
                for t, r in zip(DECODE_TEMPLATES, rec.constrained_many(p, _DECODE_SLOTS), strict=True):
                    if r is None:
                        continue
                    adj = r.score - (0 if self._kinds_ok(t.kind, att.color) else _COLOR_MISMATCH_PENALTY)
                    if best is None or adj > best[0]:
                        best = (adj, r.text, r.char_probs, t.kind, r.score, r.slot_probs)
            else:
                # Stock-style decoding (argmax over the whole dictionary) plus position repair: for comparison.
                fixed = plates.repair(g.text)
                if fixed is not None and len(g.char_probs) == len(fixed):
                    best = (g.score, fixed, g.char_probs, plates.parse(fixed).kind, g.score, None)
        if best is None:
            return None
        _, text, char_probs, kind, score, slot_probs = best
        try:
            kind = plates.parse(text).kind
        except plates.InvalidPlate:
            return None
        conf = self._scale(_calibrate(min(char_probs), score), REFERENCE)
        att.slot_probs = slot_probs
        return PlateRead(
            plate=text,
            color=reconcile(att.color, kind, att.crop),
            confidence=round(conf, 4),
            box=att.cand.box,
            crop=att.crop,
            char_probs=[round(c, 4) for c in char_probs],
            kind=kind,
        )
