"""The plate reader: locate → rectify → kind/colour → constrained recognition, with a PP-OCR det fallback.

Engines (``PlateReader(engine=...)``): ``own`` — the project's recogniser and kind classifier
(plate_reader/weights); ``ppocr`` (formerly ``onnx``) — PP-OCRv4's recogniser with HSV colour; ``combined`` — both
recognisers as a product of experts over the same template (experts.py); ``paddle`` — PaddleOCR 3.x.

This module holds the reader's public face and its search (crop or scene, candidates, det fallback, ensemble);
the crops it reads are cut in crop_paths.py (and found inside loose crops by crop_fit.py), decoded per engine in
decode_own.py / decode_ppocr.py / decode_text.py, voted on in ensemble.py; reads.py has the shared types.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .calibration import ConfidenceMap, maps_for, stale
from .color import classify_color, color_fractions
from .consensus import consensus
from .crop_paths import CropPaths
from .decode_own import OwnDecoding
from .decode_ppocr import PpocrDecoding
from .decode_text import TextDecoding
from .ensemble import Ensemble
from .image import ImageError, as_bgr, decode_image
from .locate import Candidate, _iou, find_candidates
from .reads import Attempt, PlateRead, Sink, better
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
# own/combined engines: the kind classifier's colour is taken when it is at least this sure, else the HSV one;
# combined: PP-OCRv4 is asked only about crops the own models read below EXPERT_BELOW. Both are derived for each
# set of weights (benchmarks/derive_thresholds.py, stored in calibration.json: thresholds.py); these constants
# are only the fallback when no stored entry fits the models running (they were set on the EasyPR dev half).
COLOR_TRUST = FALLBACK_COLOR_TRUST
EXPERT_BELOW = FALLBACK_EXPERT_BELOW
# An image this wide for its height, filled by a plate colour (or this small), is a plate crop: read as one.
# 1.4: a double-row plate cut with rectify's margin is 440x1.12 by 220x1.28 mm, 1.75 across.
CROP_ASPECT = (1.4, 5.5)
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


class PlateReader(CropPaths, Ensemble, OwnDecoding, PpocrDecoding, TextDecoding):
    """Reusable and thread-safe: sessions are created once; each ``read`` keeps its state on the stack."""

    def __init__(self, engine: str = DEFAULT_ENGINE, threads: int = 1, *, province_prior: bool = True,
                 fallback: bool = True, stretch: float = 2.0, max_candidates: int = 6,
                 det_side: int = 960, refine: bool = True, ensemble: bool = True,
                 fallback_below: float = FALLBACK_BELOW, ensemble_below: float = ENSEMBLE_BELOW,
                 local_provinces: str = "", local_weight: float = 4.0, weights: Path | None = None,
                 color_source: str = "fused", crop_as_crop: bool = True, expert_below: float | None = None,
                 calibrated: bool = True, province_expert: bool = True, expert_crops: int | None = None) -> None:
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
        # combined: at most this many crops of one read are shown to PP-OCRv4 (0: no cap); state per read and
        # thread (``_per_read``), since one reader serves several gates' threads at once.
        self.expert_crops = self.thresholds.expert_crops if expert_crops is None else int(expert_crops)
        if self.expert_crops < 0:
            raise ValueError("expert_crops must be >= 0 (0: no cap)")
        self._per_read = threading.local()
        self.threads = threads
        self.province_prior = province_prior
        # own/combined: the province classifier joins the province slot when the weights ship one (False: the
        # recogniser alone there, as before it; the benchmarks compare the two).
        self.province_expert = province_expert
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
        # read_crop also reads the plate it finds inside a loose crop (crop_fit.py); False: the whole crop only.
        # By default for the own models, which were trained on crops cut so. PP-OCRv4 was not: on the loose dev
        # crops it read a few more so (double-row 46 / 41 of 150, yellow-green 73 / 75, others 150 / 144 of 300)
        # in about 3x the time a crop, which the gates' default engine should not pay.
        self.fit_crops = self.kinds is not None
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
        # The own path of a combined reader never runs PP-OCRv4: its map is fitted for the own models alone. Any
        # other model this reader runs that a map was not fitted for (a province classifier shipped since)
        # makes it stale.
        out = {path: {"fitted_for": m.models, "current": not stale(m, models if path == self.engine else
                                                                   {k: v for k, v in models.items()
                                                                    if not k.startswith("ppocr")})}
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
        self._per_read.expert_left = self.expert_crops
        # Every read of the onnx engine is kept (with its attempt) for the per-character ensemble.
        reads: Sink | None = [] if self.ensemble and self.paddle is None and not quick else None
        crop_read = None
        if self.crop_as_crop and looks_like_crop(frame):
            # Already a plate crop (a camera's plate thumbnail): read it as a plate rather than search inside it.
            crop_read = self._read_crop(frame, sink=reads)
            if crop_read is not None and crop_read.plate and crop_read.confidence >= self.fallback_below:
                return self._finish(self._as_crop(crop_read, frame))
        if quick:
            return self._finish(better(self._read_candidates(frame, find_candidates(frame, self.max_candidates),
                                                               refine=False), self._as_crop(crop_read, frame)))
        best = self._read_candidates(frame, find_candidates(frame, self.max_candidates), sink=reads)
        use_fallback = self.fallback if fallback is None else fallback
        if use_fallback and (best is None or best.confidence < self.fallback_below):
            other = self._paddle_frame(frame) if self.paddle is not None else \
                self._read_candidates(frame, self.detector.find(frame), sink=reads)
            if other is not None and (best is None or other.confidence > best.confidence):
                best = other
        best = better(best, crop_read)
        if reads is not None and best is not None and best.confidence < self.ensemble_below:
            best = self._ensemble(frame, best, reads)
        if crop_read is not None and best is not None and _iou(best.box, crop_read.box) >= 0.5:
            best = self._as_crop(best, frame)  # the crop's plate, read another way: still a crop's read
        return self._finish(best)

    def _finish(self, read: PlateRead | None, color: str = "unknown") -> PlateRead:
        if read is None or not read.plate:
            return read or PlateRead(plate=None, color=color, confidence=0.0, box=None)
        if self._reference is not None:
            read.probability = round(self._reference.probability(read.confidence), 4)
        return read

    def read_crop(self, crop: np.ndarray) -> PlateRead:
        """Read an already cut-out plate (e.g. a camera's own plate thumbnail), loose or tight."""
        crop = as_bgr(crop)
        self._per_read.expert_left = self.expert_crops
        r = self._read_crop(crop)
        return self._finish(self._as_crop(r, crop), classify_color(crop) if r is None else "unknown")

    # -- internals -----------------------------------------------------------------------------------------
    def _read_candidates(self, frame: np.ndarray, cands: Sequence[Candidate], pad: bool = True,
                         sink: Sink | None = None, refine: bool = True) -> PlateRead | None:
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

    def _recognise(self, images: list[np.ndarray], attempts: list[Attempt],
                   sink: Sink | None = None) -> PlateRead | None:
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

    def _trust(self, guess) -> bool:
        """Whether the kind classifier's colour stands (else the HSV colour of the crop does)."""
        if guess is None or self.color_source == "hsv":
            return False
        return self.color_source == "model" or guess.prob >= self.color_trust
