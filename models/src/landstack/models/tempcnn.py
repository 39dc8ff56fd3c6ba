"""TempCNN (Pelletier et al. 2019): 1-D convolutions over a pixel's time series.

Input (N, F, T) raw features; output (N, C) logits (softmax gives class probabilities). The
per-feature normalisation computed at training is part of the module (buffers), so the weights
file alone turns raw features into predictions.
"""

from __future__ import annotations

import torch
from torch import nn

from landstack.models.layers import Standardise


class TempCNN(nn.Module):
    """Conv1D blocks (filters, kernel, batch norm, ReLU, dropout) -> flatten -> dense -> classes."""

    def __init__(
        self,
        n_features: int,
        time_steps: int,
        n_classes: int,
        filters: int = 64,
        kernel_size: int = 5,
        blocks: int = 3,
        dense: int = 256,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.normalise = Standardise(n_features)
        layers: list[nn.Module] = []
        channels = n_features
        for _ in range(blocks):
            layers += [
                nn.Conv1d(channels, filters, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm1d(filters),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
            ]
            channels = filters
        self.convs = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(filters * time_steps, dense),
            nn.BatchNorm1d(dense),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(dense, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(self.normalise(x)))


def tempcnn_flops(n_features: int, time_steps: int, n_classes: int, **hp: int | float) -> int:
    """Multiply-add FLOPs (2 per MAC) of one sample's forward pass; for throughput accounting."""
    filters = int(hp.get("filters", 64))
    k = int(hp.get("kernel_size", 5))
    blocks = int(hp.get("blocks", 3))
    dense = int(hp.get("dense", 256))
    macs = n_features * filters * k * time_steps + (blocks - 1) * filters * filters * k * time_steps
    macs += filters * time_steps * dense + dense * n_classes
    return 2 * macs
