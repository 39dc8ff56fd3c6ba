"""Building blocks shared by the architectures."""

from __future__ import annotations

import torch
from torch import nn


class Standardise(nn.Module):
    """Per-feature z-score with the training statistics kept as buffers (saved with the weights).

    `mean`/`std` have shape (C,) and are broadcast over every axis after the channel axis. Missing
    values (NaN) become the feature mean, i.e. 0 after scaling, so a gap in a time series does not
    poison the whole prediction.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(torch.clamp(std, min=1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        z = (x - self.mean.view(shape)) / self.std.view(shape)
        return torch.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)


class Ensemble(nn.Module):
    """K members with the same input and output; the output is their mean."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)
