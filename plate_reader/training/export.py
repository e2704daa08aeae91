"""ONNX export of the trained networks with the json the reader loads, checked against torch."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import torch

from plate_reader.training.spec import ALPHABET, KIND_INPUT, LABELS, PROV_INPUT, PROV_LABELS, REC_INPUT


def _export(model: torch.nn.Module, shape: tuple[int, ...], path: Path) -> None:
    model.eval()
    dummy = torch.zeros((2, *shape), dtype=torch.float32)
    torch.onnx.export(model, (dummy,), str(path), input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}}, opset_version=17, dynamo=False)


def check(model: torch.nn.Module, path: Path, x: np.ndarray, atol: float = 1e-3) -> float:
    """Largest |onnxruntime - torch| on these inputs; raises if above ``atol``."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"image": x.astype(np.float32)})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x.astype(np.float32))).numpy()
    diff = float(np.abs(got - want).max())
    if diff > atol:
        raise RuntimeError(f"{path.name}: onnxruntime differs from torch by {diff:.2e}")
    return diff


def write(rec: torch.nn.Module, kind: torch.nn.Module, out: Path, version: str, commit: str,
          samples_rec: np.ndarray, samples_kind: np.ndarray, prov: torch.nn.Module | None = None) -> dict:
    """The ONNX files and their json; ``prov`` (the province classifier) is optional: without it any older
    ``plate_prov`` files in ``out`` are removed, so a folder never pairs a recogniser with another run's."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "__init__.py").touch()
    _export(rec, (REC_INPUT["channels"], REC_INPUT["height"], REC_INPUT["width"]), out / "plate_rec.onnx")
    _export(kind, (KIND_INPUT["channels"], KIND_INPUT["height"], KIND_INPUT["width"]), out / "plate_kind.onnx")
    trained = {"commit": commit, "data": "see plate_reader/training/MODEL_CARD.md"}
    (out / "plate_rec.json").write_text(json.dumps({
        "name": "cleangate-plate-rec", "version": version, "input": REC_INPUT, "layout": "stitched",
        "alphabet": list(ALPHABET), "blank": 0, "output": "log_softmax", "trained": trained,
    }, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (out / "plate_kind.json").write_text(json.dumps({
        "name": "cleangate-plate-kind", "version": version, "input": KIND_INPUT, "labels": list(LABELS),
        "output": "logits", "trained": trained,
    }, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    diffs = {"rec_max_diff": check(rec, out / "plate_rec.onnx", samples_rec),
             "kind_max_diff": check(kind, out / "plate_kind.onnx", samples_kind)}
    if prov is None:
        for name in ("plate_prov.onnx", "plate_prov.json"):
            (out / name).unlink(missing_ok=True)
        return diffs
    cols = PROV_INPUT["columns"]
    _export(prov, (PROV_INPUT["channels"], PROV_INPUT["height"], cols), out / "plate_prov.onnx")
    (out / "plate_prov.json").write_text(json.dumps({
        "name": "cleangate-plate-province", "version": version, "input": PROV_INPUT, "labels": list(PROV_LABELS),
        "output": "logits", "trained": trained,
    }, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    diffs["prov_max_diff"] = check(prov, out / "plate_prov.onnx", np.ascontiguousarray(samples_rec[..., :cols]))
    return diffs


def default_version(out: Path | None = None) -> str:
    """Today's date and a counter: one past the version already in ``out`` when that is from today too
    (a second model trained on one day must not carry the first one's version)."""
    today, n = f"{date.today():%Y.%m.%d}", 1
    spec = Path(out) / "plate_rec.json" if out is not None else None
    if spec is not None and spec.exists():
        prev = str(json.loads(spec.read_text(encoding="utf-8")).get("version", ""))
        day, _, num = prev.rpartition("-")
        if day == today and num.isdigit():
            n = int(num) + 1
    return f"{today}-{n}"
