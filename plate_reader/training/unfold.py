"""A shipped recogniser (its ONNX file) back into the torch network, for fine-tuning from the released weights.

The ONNX export folds each BatchNorm into the convolution before it (weight and a bias), so the file holds
no normalisation statistics. Loading the folded weights with an identity BatchNorm reproduces the network in
eval mode exactly, but training switches BatchNorm to batch statistics and would normalise away the folded
bias and scale. So each BatchNorm is unfolded: its running mean and variance are measured on ``sample`` crops
(the convolution's own output there), and its scale and shift are set so that it passes that output through
unchanged — exactly in eval mode, and up to the batch's sampling noise in training mode.

Why: a release's weights are in the repository, a run's checkpoint is not; fine-tuning from the ONNX file
lets anyone rebuild the next model from a clean checkout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


def _folded(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) of each Conv node, in graph order."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    convs = []
    for node in m.graph.node:
        if node.op_type == "Conv":
            w, b = (inits[n] for n in node.input[1:3])
            convs.append((w, b))
    return convs


def load_onnx(model: nn.Module, path: Path, sample: np.ndarray, batch: int = 256) -> float:
    """Load ``path`` into ``model`` (same architecture) and unfold its BatchNorms on ``sample`` (N,C,H,W,
    normalised as the network reads them). Returns the largest |torch - onnxruntime| on the sample's first
    crops, and raises if the file's convolutions do not match the network's."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    folded = _folded(path)
    if len(folded) != len(convs):
        raise ValueError(f"{Path(path).name}: {len(folded)} convolutions, the network has {len(convs)}")
    mods = list(model.modules())
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d | None, np.ndarray, np.ndarray]] = []
    for conv, (w, b) in zip(convs, folded, strict=True):
        if tuple(conv.weight.shape) != w.shape:
            raise ValueError(f"{Path(path).name}: a convolution of shape {w.shape}, the network has "
                             f"{tuple(conv.weight.shape)}")
        at = mods.index(conv) + 1
        bn = mods[at] if at < len(mods) and isinstance(mods[at], nn.BatchNorm2d) else None
        pairs.append((conv, bn, w, b))
    with torch.no_grad():
        for conv, bn, w, b in pairs:
            conv.weight.copy_(torch.from_numpy(np.array(w)))
            if bn is None:
                conv.bias.copy_(torch.from_numpy(np.array(b)))
                continue
            # Identity first (y = x + b), so one eval pass sees every layer's true input.
            bn.running_mean.copy_(torch.from_numpy(-np.array(b)))
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.fill_(1.0)
            bn.bias.zero_()
    sums: dict[nn.BatchNorm2d, list[torch.Tensor]] = {}

    def hook(mod, inputs, _out):
        x = inputs[0].double()
        s = sums.setdefault(mod, [torch.zeros(x.shape[1], dtype=torch.float64)] * 2 + [0])
        s[0] = s[0] + x.sum(dim=(0, 2, 3))
        s[1] = s[1] + (x * x).sum(dim=(0, 2, 3))
        s[2] += x.shape[0] * x.shape[2] * x.shape[3]

    handles = [bn.register_forward_hook(hook) for _, bn, _, _ in pairs if bn is not None]
    model.eval()
    with torch.no_grad():
        for i in range(0, len(sample), batch):
            model(torch.from_numpy(np.ascontiguousarray(sample[i:i + batch], np.float32)))
    for h in handles:
        h.remove()
    with torch.no_grad():
        for _, bn, _, b in pairs:
            if bn is None:
                continue
            s0, s1, n = sums[bn]
            mean = s0 / n
            var = (s1 / n - mean * mean).clamp_min(0.0)
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.copy_((mean + torch.from_numpy(np.array(b)).double()).float())
    return _check(model, path, sample[:64])


def _check(model: nn.Module, path: Path, x: np.ndarray) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]
    model.eval()
    with torch.no_grad():
        want = model(torch.from_numpy(x.astype(np.float32))).numpy()
    diff = float(np.abs(got - want).max())
    if diff > 1e-3:
        raise RuntimeError(f"{Path(path).name}: the unfolded network differs from the file by {diff:.2e}")
    return diff
