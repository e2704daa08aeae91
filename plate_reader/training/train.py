"""Training loops: the recogniser (CTC), the kind classifier, the province classifier; fixed seeds and steps."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from plate_reader.layout import normalise
from plate_reader.training.data import Arrays
from plate_reader.training.spec import (
    KIND_INPUT,
    LABELS,
    PROV_INPUT,
    REC_INPUT,
    encode,
    greedy,
    province_label,
)


def seed_all(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_init(model: nn.Module, path: Path, sample: np.ndarray | None = None) -> dict:
    """Load a previous run's recogniser into ``model``: its checkpoint (``train_recogniser``'s ``checkpoint``)
    or a released ONNX file (unfold.py: needs ``sample`` crops, normalised, to unfold the BatchNorms)."""
    import hashlib
    import json

    raw = Path(path).read_bytes()
    record = {"path": Path(path).name, "sha256": hashlib.sha256(raw).hexdigest()}
    if Path(path).suffix == ".onnx":
        from plate_reader.training import unfold

        if sample is None:
            raise ValueError("an ONNX start needs sample crops to unfold its BatchNorms")
        diff = unfold.load_onnx(model, Path(path), sample)
        spec = Path(path).with_suffix(".json")
        version = json.loads(spec.read_text(encoding="utf-8")).get("version") if spec.exists() else None
        return {**record, "format": "onnx", "version": version, "unfold_max_diff": diff,
                "unfold_sample": len(sample), "step": None, "steps": None}
    state = torch.load(path, map_location="cpu", weights_only=True)
    # The EMA wrapper saves the plain module's keys plus its step counter.
    weights = {k: v for k, v in state["ema"].items() if k != "n_averaged"}
    model.load_state_dict(weights)
    return {**record, "step": state.get("step"), "steps": state.get("steps")}


def _batches(sources: list[tuple[Arrays, float]], batch: int, rng: np.random.Generator,
             keep: Callable[[Arrays], np.ndarray] | None = None):
    """Endless batches of indices drawn from each source in proportion to its weight (real data oversampled)."""
    pools = []
    for arrays, weight in sources:
        idx = np.arange(len(arrays)) if keep is None else np.nonzero(keep(arrays))[0]
        if len(idx) and weight > 0:
            pools.append((arrays, idx, weight))
    w = np.array([p[2] for p in pools], np.float64)
    w /= w.sum()
    while True:
        counts = rng.multinomial(batch, w)
        yield [(arrays, rng.choice(idx, size=c)) for (arrays, idx, _), c in zip(pools, counts, strict=True) if c]


def _shift(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # A pixel or two of translation per batch: the stored crops already carry the localiser's jitter.
    dy, dx = int(rng.integers(-1, 2)), int(rng.integers(-2, 3))
    return np.roll(x, (dy, dx), axis=(1, 2))


def train_recogniser(model: nn.Module, sources: list[tuple[Arrays, float]], steps: int, seed: int,
                     batch: int = 64, lr: float = 3e-3, log: Callable[[str], None] = print,
                     stop_after: int | None = None, checkpoint: Path | None = None,
                     stop_file: Path | None = None, ema_decay: float = 0.999) -> tuple[nn.Module, dict]:
    """CTC training on a one-cycle schedule of ``steps``; returns the weight average (EMA) and the run's figures.

    The exponential moving average of the weights (and BatchNorm statistics) is what gets exported: it reads
    better than the last step's weights, and it is already a usable model half-way through the schedule, so
    a run stopped early (``stop_after``, or ``stop_file`` appearing: the run ends at that step and says so)
    still yields good weights. ``checkpoint`` receives the average every 500 steps.
    """
    rng = np.random.default_rng([seed, 1])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 2), pct_start=0.15)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    model.train()
    t0, seen, avg, done = time.time(), 0, None, 0
    end = min(steps, stop_after) if stop_after else steps
    gen = _batches(sources, batch, rng)

    def save() -> None:
        torch.save({"step": done, "steps": steps, "ema": ema.module.state_dict()}, checkpoint)

    for step in range(end):
        if stop_file is not None and step % 50 == 0 and Path(stop_file).exists():
            log(f"rec: {stop_file} found, stopping at step {step}")
            break
        parts = next(gen)
        x = np.concatenate([_shift(a.rec[i], rng) for a, i in parts])
        texts = [a.texts[j] for a, i in parts for j in i]
        xt = torch.from_numpy(normalise(x, REC_INPUT))
        targets = torch.tensor([c for t in texts for c in encode(t)], dtype=torch.long)
        tlen = torch.tensor([len(t) for t in texts], dtype=torch.long)
        out = model(xt)                                   # N, T, C
        ilen = torch.full((out.shape[0],), out.shape[1], dtype=torch.long)
        loss = ctc(out.permute(1, 0, 2), targets, ilen, tlen)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        ema.update_parameters(model)
        done = step + 1
        seen += len(texts)
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        if step % 100 == 0 or step == end - 1:
            el = time.time() - t0
            log(f"rec step {step + 1}/{steps} loss {avg:.3f} {seen / max(el, 1e-6):.0f} crops/s {el / 60:.1f} min")
        if checkpoint is not None and done % 500 == 0:
            save()
    if checkpoint is not None and done and done % 500:
        # The last steps too: a later run fine-tunes from this file (``--init``).
        save()
    model.eval()
    avg_model = ema.module if done else model
    avg_model.eval()
    return avg_model, {"steps": steps, "steps_done": done, "batch": batch, "crops_seen": seen,
                       "ema_decay": ema_decay, "seconds": round(time.time() - t0, 1)}


def _train_classifier(name: str, model: nn.Module, gen, steps: int, rng: np.random.Generator, lr: float,
                      batch_xy: Callable, log: Callable[[str], None]) -> dict:
    """Cross-entropy (label smoothing 0.05) on a one-cycle schedule; ``batch_xy(parts, rng)`` gives a batch's
    normalised inputs and labels from ``gen``'s index draws."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 2), pct_start=0.15)
    model.train()
    t0, seen, avg = time.time(), 0, None
    for step in range(steps):
        x, y = batch_xy(next(gen), rng)
        loss = nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y), label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        seen += len(y)
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        if step % 100 == 0 or step == steps - 1:
            el = time.time() - t0
            log(f"{name} step {step + 1}/{steps} loss {avg:.3f} {seen / max(el, 1e-6):.0f} crops/s {el / 60:.1f} min")
    model.eval()
    return {"steps": steps, "crops_seen": seen, "seconds": round(time.time() - t0, 1)}


def train_kind(model: nn.Module, sources: list[tuple[Arrays, float]], steps: int, seed: int, batch: int = 64,
               lr: float = 3e-3, log: Callable[[str], None] = print) -> dict:
    rng = np.random.default_rng([seed, 2])

    def batch_xy(parts, rng):
        x = np.concatenate([_shift(a.kind[i], rng) for a, i in parts])
        return normalise(x, KIND_INPUT), np.concatenate([a.labels[i] for a, i in parts])

    gen = _batches(sources, batch, rng, keep=lambda a: a.labels >= 0)
    return {"batch": batch, **_train_classifier("kind", model, gen, steps, rng, lr, batch_xy, log)}


def train_province(model: nn.Module, sources: list[tuple[Arrays, float]], steps: int, seed: int, batch: int = 128,
                   lr: float = 2e-3, log: Callable[[str], None] = print) -> dict:
    """The province classifier on the recogniser's crops (their left PROV_INPUT columns), the recogniser's mix."""
    cols = PROV_INPUT["columns"]
    rng = np.random.default_rng([seed, 3])
    labels = {id(a): np.array([province_label(t) for t in a.texts], dtype=np.int64) for a, _ in sources}

    def batch_xy(parts, rng):
        # Shifted before the strip is cut, as the localiser's jitter moves the province within it.
        x = np.concatenate([_shift(a.rec[i], rng)[:, :, :cols] for a, i in parts])
        return normalise(x, REC_INPUT), np.concatenate([labels[id(a)][i] for a, i in parts])

    gen = _batches(sources, batch, rng)
    return {"batch": batch, **_train_classifier("prov", model, gen, steps, rng, lr, batch_xy, log)}


__all__ = ["seed_all", "train_recogniser", "train_kind", "train_province", "greedy", "LABELS"]
