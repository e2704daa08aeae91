"""The project's own plate models (plate_reader/weights, see MODEL_CARD.md there): a CTC recogniser over the plate
alphabet, a plate-kind/colour classifier and (where shipped) a province classifier, all ONNX, run with
onnxruntime on the rectified crop.

The recogniser's output is decoded by the same GA 36 template Viterbi as PP-OCRv4's (``recognize.CTCDecoder``):
its alphabet becomes the decoder's class list, so the grammar constrains every slot whichever model read it.
Double-row plates are stitched into one row (``layout.stitch_double_row``) before recognition, as in training.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .models import ModelMissing, make_session
from .recognize import CTCDecoder

REC_NAME = "plate_rec"
KIND_NAME = "plate_kind"
PROV_NAME = "plate_prov"
# The classifier's labels and the colour each one means for the rules (plates.COLORS).
LABEL_COLORS = {"blue": "blue", "yellow": "yellow", "yellow_double": "yellow", "green": "green",
                "yellow_green": "yellow-green", "white": "white", "black": "black"}
DOUBLE_LABEL = "yellow_double"


def weights_dir() -> Path:
    return Path(__file__).with_name("weights")


def _load(directory: Path, name: str, threads: int) -> tuple[object, dict]:
    onnx_path, meta_path = directory / f"{name}.onnx", directory / f"{name}.json"
    if not onnx_path.is_file() or not meta_path.is_file():
        raise ModelMissing(f"the project's plate model {onnx_path} (+ .json) is not installed; reinstall cleangate")
    with open(meta_path, encoding="utf-8") as f:
        meta = json.load(f)
    # What the confidence maps are fitted for: a retrained file under an unchanged version string is another model.
    meta["_sha256"] = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:16]
    return make_session(onnx_path, threads), meta


def _batch(crops: Sequence[np.ndarray], spec: dict) -> np.ndarray:
    from .layout import to_input

    return np.stack([to_input(c, spec) for c in crops]).astype(np.float32, copy=False)


@dataclass(frozen=True)
class KindGuess:
    label: str  # one of the classifier's labels
    prob: float  # its softmax probability
    probs: dict[str, float]

    @property
    def color(self) -> str:
        return LABEL_COLORS.get(self.label, "unknown")

    @property
    def double(self) -> bool:
        return self.label == DOUBLE_LABEL

    def color_prob(self, color: str) -> float:
        """Probability mass of the labels that mean this colour (yellow: single- and double-row)."""
        return sum(p for lab, p in self.probs.items() if LABEL_COLORS.get(lab) == color)


class KindClassifier:
    """Plate kind and colour of rectified crops. onnxruntime's ``run`` is thread-safe: no lock."""

    def __init__(self, threads: int = 1, directory: Path | None = None) -> None:
        self.session, self.meta = _load(Path(directory or weights_dir()), KIND_NAME, threads)
        self.labels: list[str] = list(self.meta["labels"])
        self.version = str(self.meta.get("version", "unknown"))

    def classify(self, crops: Sequence[np.ndarray]) -> list[KindGuess]:
        if not crops:
            return []
        logits = self.session.run(["logits"], {"image": _batch(crops, self.meta["input"])})[0]
        z = logits - logits.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        out = []
        for row in p:
            k = int(row.argmax())
            out.append(KindGuess(self.labels[k], float(row[k]), dict(zip(self.labels, row.tolist(), strict=True))))
        return out


class ProvinceClassifier:
    """The province from the left columns of the recogniser's normalised input (no resize of its own)."""

    def __init__(self, threads: int = 1, directory: Path | None = None) -> None:
        self.session, self.meta = _load(Path(directory or weights_dir()), PROV_NAME, threads)
        spec = self.meta["input"]
        if spec.get("of") != REC_NAME:
            raise ModelMissing(f"{PROV_NAME}.json: its input must be the recogniser's ('of': '{REC_NAME}')")
        self.columns = int(spec["columns"])
        self.labels: list[str] = list(self.meta["labels"])
        self.version = str(self.meta.get("version", "unknown"))

    def posteriors(self, rec_input: np.ndarray) -> np.ndarray:
        """[N, labels] softmax for a batch of the recogniser's inputs ([N, 1, H, W], normalised)."""
        x = np.ascontiguousarray(rec_input[..., :self.columns], dtype=np.float32)
        logits = self.session.run(["logits"], {"image": x})[0]
        z = np.exp(logits - logits.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)


class OwnRecognizer(CTCDecoder):
    """The CTC recogniser: fixed input size (all crops of a call run as one batch), softmax out per crop."""

    def __init__(self, threads: int = 1, local_provinces: str = "", local_weight: float = 4.0,
                 directory: Path | None = None) -> None:
        self.session, self.meta = _load(Path(directory or weights_dir()), REC_NAME, threads)
        if int(self.meta.get("blank", 0)) != 0:
            raise ModelMissing("plate_rec.json: the CTC blank must be class 0")
        # Class i+1 is alphabet[i]; nothing the model emits is junk beyond the blank.
        super().__init__(["<blank>"] + list(self.meta["alphabet"]), local_provinces, local_weight, junk="")
        self.version = str(self.meta.get("version", "unknown"))
        self.log_out = self.meta.get("output", "log_softmax") == "log_softmax"
        # The province slot's second expert (province_expert.py), when the weights ship one.
        folder = Path(directory or weights_dir())
        self.province = ProvinceClassifier(threads, folder) if (folder / f"{PROV_NAME}.onnx").is_file() else None

    def probs(self, crops: Sequence[np.ndarray], stretch: float = 1.0) -> list[np.ndarray]:
        """Per crop, T×C class probabilities. ``stretch`` is ignored: the model's input width is fixed."""
        return self.probs_from_input(_batch(crops, self.meta["input"])) if crops else []

    def probs_and_provinces(self, crops: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        """``probs``, and per crop the province classifier's posterior over ``province.labels`` (None for every
        crop when the weights folder has no province classifier), from the same input batch."""
        if not crops:
            return [], []
        x = _batch(crops, self.meta["input"])
        provinces: list[np.ndarray | None] = [None] * len(crops)
        if self.province is not None:
            provinces = list(self.province.posteriors(x))
        return self.probs_from_input(x), provinces

    def probs_from_input(self, x: np.ndarray) -> list[np.ndarray]:
        """``probs`` of an already prepared, normalised input batch ([N, 1, H, W])."""
        out = self.session.run(["logits"], {"image": x})[0]
        if self.log_out:
            out = np.exp(out)
        else:
            out = np.exp(out - out.max(2, keepdims=True))
            out /= out.sum(2, keepdims=True)
        return [o for o in out.astype(np.float32, copy=False)]


def versions(recognizer: OwnRecognizer | None, kinds: KindClassifier | None, *, digests: bool = False
             ) -> dict[str, str]:
    """The model versions a read used, for ``plate-reader read``'s JSON; with ``digests``, each ONNX file's
    sha256 (first 16 hex) too, as ``<name>_sha256`` (what a confidence map is fitted for)."""
    out = {}
    province = recognizer.province if recognizer is not None else None
    for name, model in ((REC_NAME, recognizer), (KIND_NAME, kinds), (PROV_NAME, province)):
        if model is not None:
            out[name] = model.version
            if digests:
                out[name + "_sha256"] = model.meta["_sha256"]
    return out
