"""Impervious CNN: a fully convolutional patch segmenter for the 4 CISC classes at 30 m.

Input (N, C, H, W) raw features (any H, W); output (N, 4, H, W) logits for class codes 0..3
(bare land or other, impervious surface, vegetation, water). Dilated 3x3 convolutions widen the
context to about 31 pixels (~1 km at 30 m) without pooling, so every pixel keeps full resolution.
"""

from __future__ import annotations

import torch
from torch import nn

from landstack.models.layers import Standardise


class ImperviousCNN(nn.Module):
    """Stacked dilated conv blocks (BN, ReLU) and a 1x1 classifier."""

    def __init__(
        self,
        in_channels: int,
        n_classes: int = 4,
        width: int = 32,
        dilations: tuple[int, ...] | list[int] = (1, 2, 4, 8),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.normalise = Standardise(in_channels)
        layers: list[nn.Module] = []
        cin = in_channels
        for d in dilations:
            layers += [
                nn.Conv2d(cin, width, 3, padding=d, dilation=d, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            cin = width
        layers += [nn.Dropout2d(dropout), nn.Conv2d(width, n_classes, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.normalise(x))
