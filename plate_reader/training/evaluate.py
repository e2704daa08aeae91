"""Figures for the model card, measured on the exported ONNX files with onnxruntime (what the service runs)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from plate_reader import plates
from plate_reader.layout import normalise
from plate_reader.training.data import Arrays
from plate_reader.training.spec import KIND_INPUT, LABELS, REC_INPUT, greedy


def session(path: Path, threads: int = 1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _run(sess, x: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([sess.run(["logits"], {"image": x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def read_texts(weights: Path, arrays: Arrays) -> list[str]:
    return greedy(_run(session(Path(weights) / "plate_rec.onnx"), normalise(arrays.rec, REC_INPUT)))


def kinds(weights: Path, arrays: Arrays) -> np.ndarray:
    return _run(session(Path(weights) / "plate_kind.onnx"), normalise(arrays.kind, KIND_INPUT)).argmax(-1)


def figures(weights: Path, arrays: Arrays) -> dict:
    """Exact-match rate overall and per kind (greedy CTC, no grammar), and kind accuracy where labelled."""
    texts = read_texts(weights, arrays)
    ok = np.array([a == b for a, b in zip(texts, arrays.texts, strict=True)])
    out: dict = {"n": len(ok), "exact": round(float(ok.mean()), 4) if len(ok) else None}
    lab = arrays.labels
    if (lab >= 0).any():
        pred = kinds(weights, arrays)
        m = lab >= 0
        out["kind_acc"] = round(float((pred[m] == lab[m]).mean()), 4)
        per = {}
        for i, name in enumerate(LABELS):
            sel = lab == i
            if sel.any():
                per[name] = {"n": int(sel.sum()), "exact": round(float(ok[sel].mean()), 4),
                             "kind_acc": round(float((pred[sel] == i).mean()), 4)}
        out["per_kind"] = per
    out.update(province_figures(arrays.texts, texts))
    out["errors"] = [(w, g) for w, g, k in zip(arrays.texts, texts, ok, strict=True) if not k][:15]
    return out


def template_figures(weights: Path, arrays: Arrays) -> dict:
    """Through the reader's GA 36 template decoder (``recognize.py``): exact rate and province slot wrong, with the
    recogniser alone and with the province classifier joining the province slot (``province_expert.py``); and
    the classifier alone. Empty when ``weights`` has no province classifier."""
    from plate_reader.own_engine import OwnRecognizer
    from plate_reader.province_expert import apply_many
    from plate_reader.reads import DECODE_SLOTS, DOUBLE_SLOTS

    rec = OwnRecognizer(1, directory=Path(weights))
    if rec.province is None or not len(arrays):
        return {}
    x = normalise(arrays.rec, REC_INPUT).astype(np.float32)
    probs = [p for i in range(0, len(x), 256) for p in rec.probs_from_input(x[i:i + 256])]
    post = np.concatenate([rec.province.posteriors(x[i:i + 256]) for i in range(0, len(x), 256)])
    labels, double = rec.province.labels, LABELS.index("yellow_double")

    def best(reads) -> str:
        ok = [r for r in reads if r is not None]
        return max(ok, key=lambda r: r.score).text if ok else ""

    alone, joined = [], []
    for i in range(len(arrays)):
        slots = DOUBLE_SLOTS if arrays.labels[i] == double else DECODE_SLOTS
        reads = rec.constrained_many(probs[i], slots)
        alone.append(best(reads))
        joined.append(best(apply_many(reads, post[i], labels, rec.chars, slots)))
    truth = arrays.texts
    pairs = [(t[0], labels[int(k)]) for t, k in zip(truth, post.argmax(1), strict=True) if t and t[0] in plates.PROVINCES]
    return {"template_exact": round(float(np.mean([a == t for a, t in zip(alone, truth, strict=True)])), 4),
            "template_exact_prov": round(float(np.mean([a == t for a, t in zip(joined, truth, strict=True)])), 4),
            "template_province_err": province_figures(truth, alone)["province_err"],
            "template_province_err_prov": province_figures(truth, joined)["province_err"],
            "classifier_province_err": round(sum(a != b for a, b in pairs) / len(pairs), 4) if pairs else None}


def province_figures(truth: list[str], reads: list[str]) -> dict:
    """The province slot alone: how often it is wrong, and how many of the wrong reads are 皖 (CCPD's prior).

    An unbiased reader spreads its wrong provinces over the other 30, so 皖 would take about 1/31 of them.
    """
    pairs = [(t[0], r[:1]) for t, r in zip(truth, reads, strict=True) if t and t[0] in plates.PROVINCES]
    wrong = [r for t, r in pairs if r != t]
    return {"province_n": len(pairs),
            "province_err": round(len(wrong) / len(pairs), 4) if pairs else None,
            "province_wrong_wan": round(wrong.count("皖") / len(wrong), 4) if wrong else None}


def latency_ms(path: Path, shape: tuple[int, ...], runs: int = 300) -> dict:
    """Per-crop time of one ONNX model on ONE onnxruntime thread, batch 1 (median and p95)."""
    sess = session(path, threads=1)
    x = np.random.default_rng(0).normal(size=(1, *shape)).astype(np.float32)
    for _ in range(30):
        sess.run(["logits"], {"image": x})
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(["logits"], {"image": x})
        ts.append((time.perf_counter() - t) * 1000)
    return {"median": round(float(np.median(ts)), 3), "p95": round(float(np.percentile(ts, 95)), 3)}
