"""The ``paddle`` engine: PaddleOCR 3.x (``pip install .[paddle]``) running the same shipped PP-OCRv4 ONNX files.

PaddleOCR only runs offline when every model it uses is a local folder; with hub names alone it probes four model
hosts and fails. So the folders are built here, at run time, into a cache directory: each holds the ONNX file from
the installed ``rapidocr_onnxruntime`` wheel as ``inference.onnx`` plus an ``inference.yml`` naming the model and
its pre/post-processing (the layout PaddleX reads for ``engine="onnxruntime"``). Nothing is downloaded.

PaddleOCR returns text and one score per line, not the recogniser's per-character probabilities, so this engine
reads plates by normalising the text and repairing it with the plate grammar (``plates.repair``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from .models import DET_FILE, REC_FILE, model_path

DET_NAME = "PP-OCRv4_mobile_det"
REC_NAME = "PP-OCRv4_mobile_rec"
_LAYOUT_VERSION = "1"


class PaddleUnavailable(RuntimeError):
    """paddleocr (the ``[paddle]`` extra) is not installed."""


def _det_config() -> dict:
    return {
        "Global": {"model_name": DET_NAME},
        "PreProcess": {
            "transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"DetLabelEncode": None},
                {"DetResizeForTest": {"resize_long": 960}},
                {"NormalizeImage": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                    "scale": "1./255.", "order": "hwc"}},
                {"ToCHWImage": None},
                {"KeepKeys": {"keep_keys": ["image", "shape", "polys", "ignore_tags"]}},
            ]
        },
        "PostProcess": {"name": "DBPostProcess", "thresh": 0.3, "box_thresh": 0.6, "max_candidates": 1000,
                        "unclip_ratio": 1.5},
    }


def _rec_config(characters: list[str]) -> dict:
    return {
        "Global": {"model_name": REC_NAME},
        "PreProcess": {
            "transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"MultiLabelEncode": {"gtc_encode": "NRTRLabelEncode"}},
                {"RecResizeImg": {"image_shape": [3, 48, 320]}},
                {"KeepKeys": {"keep_keys": ["image", "label_ctc", "label_gtc", "length", "valid_ratio"]}},
            ]
        },
        "PostProcess": {"name": "CTCLabelDecode", "character_dict": characters},
    }


def _rec_characters(rec_onnx: Path) -> list[str]:
    """The recogniser's dictionary, stored in the ONNX file's metadata by PaddleOCR's exporter."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(rec_onnx), sess_options=opts, providers=["CPUExecutionProvider"])
    return sess.get_modelmeta().custom_metadata_map["character"].splitlines()


def default_cache_dir() -> Path:
    env = os.environ.get("CLEANGATE_PADDLE_MODELS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cleangate" / "paddle-models"


def _writable(d: Path) -> bool:
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=d, delete=True)
        probe.close()
        return True
    except OSError:
        return False


def build_model_dirs(cache_dir: Path | None = None) -> tuple[Path, Path]:
    """Local PaddleX model folders for PP-OCRv4 mobile det and rec, built once per model version.

    The folder name carries a hash of the source ONNX files, so a reinstalled wheel gets fresh folders. Folders
    are assembled in a temporary sibling and renamed into place, so concurrent readers never see half of one.
    Falls back to the system temp dir when the cache dir is not writable.
    """
    import yaml  # PyYAML comes with paddlex

    det_src, rec_src = model_path(DET_FILE), model_path(REC_FILE)
    h = hashlib.sha256(_LAYOUT_VERSION.encode())
    for src in (det_src, rec_src):
        st = src.stat()
        h.update(f"{src.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    if not _writable(root):
        root = Path(tempfile.gettempdir()) / "cleangate-paddle-models"
        root.mkdir(parents=True, exist_ok=True)
    base = root / h.hexdigest()[:16]
    out = []
    for name, src in ((DET_NAME, det_src), (REC_NAME, rec_src)):
        final = base / name
        if not ((final / "inference.onnx").is_file() and (final / "inference.yml").is_file()):
            base.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=base))
            shutil.copyfile(src, tmp / "inference.onnx")
            cfg = _det_config() if name == DET_NAME else _rec_config(_rec_characters(src))
            (tmp / "inference.yml").write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False),
                                               encoding="utf-8")
            try:
                os.replace(tmp, final)
            except OSError:  # another process won the race: use its folder
                shutil.rmtree(tmp, ignore_errors=True)
        out.append(final)
    return out[0], out[1]


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("paddleocr") is not None


class PaddleEngine:
    """PaddleOCR's pipeline (det+rec, for whole frames) and its text-recognition model (for plate crops).

    Both are built from the local folders above with ``engine="onnxruntime"``; calls are serialised by a lock.
    """

    def __init__(self, threads: int = 1, cache_dir: Path | None = None) -> None:
        # Never probe the model hosts: every model here is a local folder.
        os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
        try:
            from paddleocr import PaddleOCR, TextRecognition
        except ImportError as e:
            raise PaddleUnavailable(
                "engine='paddle' needs paddleocr 3.x: pip install 'cleangate[paddle]' "
                "(in its own environment: paddlex brings opencv-contrib-python)"
            ) from e
        det_dir, rec_dir = build_model_dirs(cache_dir)
        self.det_dir, self.rec_dir = det_dir, rec_dir
        engine_config = {"intra_op_num_threads": max(1, int(threads)), "inter_op_num_threads": 1}
        self.pipeline = PaddleOCR(
            engine="onnxruntime",
            engine_config=engine_config,
            text_detection_model_name=DET_NAME,
            text_detection_model_dir=str(det_dir),
            text_recognition_model_name=REC_NAME,
            text_recognition_model_dir=str(rec_dir),
            use_doc_orientation_classify=False,
            use_doc_unwarping=False,
            use_textline_orientation=False,
        )
        self.rec = TextRecognition(model_name=REC_NAME, model_dir=str(rec_dir), engine="onnxruntime",
                                   engine_config=engine_config)
        self._lock = threading.Lock()

    def recognize(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """(text, score) for each BGR crop."""
        if not crops:
            return []
        with self._lock:
            results = list(self.rec.predict(list(crops), batch_size=len(crops)))
        return [(str(r["rec_text"]), float(r["rec_score"])) for r in results]

    def ocr_frame(self, frame: np.ndarray) -> list[tuple[np.ndarray, str, float]]:
        """(quad 4×2 in frame pixels, text, score) for each text line PaddleOCR finds in the frame."""
        with self._lock:
            results = list(self.pipeline.predict(frame))
        out = []
        for res in results:
            for poly, text, score in zip(res["rec_polys"], res["rec_texts"], res["rec_scores"], strict=False):
                out.append((np.asarray(poly, dtype=np.float32).reshape(-1, 2), str(text), float(score)))
        return out
