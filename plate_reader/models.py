"""Where the shipped PP-OCRv4 ONNX files live, and how sessions are made.

The weights come from inside the installed ``rapidocr_onnxruntime`` wheel; nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

REC_FILE = "ch_PP-OCRv4_rec_infer.onnx"
DET_FILE = "ch_PP-OCRv4_det_infer.onnx"


class ModelMissing(RuntimeError):
    """The OCR model files are not installed (the rapidocr-onnxruntime wheel is missing or broken)."""


def model_dir() -> Path:
    # find_spec does not import the package, so rapidocr's own import-time work is skipped.
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing("rapidocr-onnxruntime is not installed; it ships the PP-OCRv4 models (pip install .)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def model_path(name: str) -> Path:
    path = model_dir() / name
    if not path.is_file():
        raise ModelMissing(f"model file {path} is missing; reinstall rapidocr-onnxruntime==1.4.4")
    return path


def make_session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # Gates run several readers side by side; each keeps to its own small thread budget.
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
