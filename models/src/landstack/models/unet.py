"""U-Net for per-pixel regression (imperviousness density 0..100, built-up S / NRES) or classes.

Input (N, C, H, W) raw features with H and W multiples of 2**depth; output (N, K, H, W): values
in 0..`scale` for regression (a sigmoid keeps them in range), logits for segmentation.
"""

from __future__ import annotations

import torch
from torch import nn

from landstack.models.layers import Standardise


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Encoder-decoder with skip connections; `depth` poolings, `width` filters doubling per level."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        depth: int = 3,
        width: int = 32,
        task: str = "regression",
        scale: float = 100.0,
    ) -> None:
        super().__init__()
        self.task = task
        self.scale = scale
        self.normalise = Standardise(in_channels)
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(_double_conv(cin, w))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for w_low, w_high in zip(reversed(widths[1:]), reversed(widths[:-1]), strict=True):
            self.up.append(nn.ConvTranspose2d(w_low, w_high, 2, stride=2))
            self.merge.append(_double_conv(2 * w_high, w_high))
        self.out = nn.Conv2d(widths[0], out_channels, 1)
        self.multiple = 2**depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.normalise(x)
        skips = []
        for i, block in enumerate(self.down):
            z = block(z if i == 0 else self.pool(z))
            skips.append(z)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1]), strict=True):
            z = merge(torch.cat([up(z), skip], dim=1))
        out = self.out(z)
        if self.task == "regression":
            return torch.sigmoid(out) * self.scale
        return out


def unet_flops(in_channels: int, out_channels: int, depth: int = 3, width: int = 32, **_: object) -> int:
    """FLOPs (2 per MAC) per output pixel of the forward pass."""
    widths = [width * 2**i for i in range(depth + 1)]
    macs = 0.0
    cin = in_channels
    for level, w in enumerate(widths):
        macs += (cin * w * 9 + w * w * 9) / 4**level
        cin = w
    for level in range(depth, 0, -1):
        w_low, w_high = widths[level], widths[level - 1]
        area = 1 / 4 ** (level - 1)
        macs += w_low * w_high * 4 * area / 4  # transposed conv: one 2x2 kernel per output pixel
        macs += (2 * w_high * w_high * 9 + w_high * w_high * 9) * area
    macs += widths[0] * out_channels
    return int(2 * macs)
