"""The two networks (torch; training only — the service runs their ONNX exports)."""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int, k=3, pad=1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class Recogniser(nn.Module):
    """All-convolutional CTC reader: 1x32x128 gray in, 32 time steps of log-probabilities out.

    No recurrent layer: convolutions export to ONNX cleanly and run fast on one core. After the rows are
    folded into one (the 4x1 layer), a 1x3 and a dilated 1x3 layer give each step about five characters of
    context. The middle layers are wider than 2026.12.01-2's (128/160/192 vs 96/128/160): that model read
    every slot but the province (51% wrong on its own held-out set, 1-4% for the other slots), so the
    capacity goes where the 31 province glyphs are told apart, before the rows are folded.
    """

    def __init__(self, n_classes: int, widths: tuple[int, ...] = (16, 32, 64, 128, 160, 192)) -> None:
        super().__init__()
        c1, c2, c3, c4, c5, c6 = widths
        self.features = nn.Sequential(
            *_block(1, c1), nn.MaxPool2d(2),                       # 16 x 64
            *_block(c1, c2), nn.MaxPool2d(2),                      # 8 x 32
            *_block(c2, c3), *_block(c3, c4), nn.MaxPool2d((2, 1)),  # 4 x 32
            *_block(c4, c5),
            *_block(c5, c6, k=(4, 1), pad=0),                      # 1 x 32
            *_block(c6, c6, k=(1, 3), pad=(0, 1)),
            nn.Conv2d(c6, c6, (1, 3), padding=(0, 2), dilation=(1, 2), bias=False), nn.BatchNorm2d(c6),
            nn.ReLU(inplace=True),
            nn.Dropout(0.1),
        )
        self.head = nn.Conv2d(c6, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.features(x))           # N, C, 1, T
        y = y.squeeze(2).permute(0, 2, 1)         # N, T, C
        return torch.log_softmax(y, dim=-1)


class KindNet(nn.Module):
    """Plate kind/colour from a 3x40x80 BGR crop: colour, gradient and one- or two-row layout."""

    def __init__(self, n_labels: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_block(3, 16), nn.MaxPool2d(2),     # 20 x 40
            *_block(16, 32), nn.MaxPool2d(2),    # 10 x 20
            *_block(32, 48), nn.MaxPool2d(2),    # 5 x 10
            *_block(48, 64),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(64 * 5 * 10, 64), nn.ReLU(inplace=True),
                                  nn.Linear(64, n_labels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ProvinceNet(nn.Module):
    """The province from the left of the recogniser's input (1x32xW gray, W = spec.PROV_INPUT's width).

    A classifier, not a reader: the first character of every layout lies in that strip (the double-row plate's
    top row too, once stitched), so the whole strip is its receptive field and the dense layer keeps where each
    stroke is, which a 31-way choice among complex glyphs needs and the CTC reader's column-wise steps do not
    give it.
    """

    def __init__(self, n_labels: int, width: int = 48) -> None:
        super().__init__()
        if width % 8:
            raise ValueError("the strip's width must be a multiple of 8")
        self.features = nn.Sequential(
            *_block(1, 32), nn.MaxPool2d(2),                       # 16 x W/2
            *_block(32, 64), nn.MaxPool2d(2),                      # 8 x W/4
            *_block(64, 96), *_block(96, 96), nn.MaxPool2d(2),     # 4 x W/8
            *_block(96, 128),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(128 * 4 * (width // 8), 192),
                                  nn.ReLU(inplace=True), nn.Linear(192, n_labels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
