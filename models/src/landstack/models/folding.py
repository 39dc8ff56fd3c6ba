"""Batch-norm folding for inference: Conv/Linear followed by BatchNorm becomes one layer.

In eval mode a BatchNorm is an affine map per channel, so it can be merged into the weights and
bias of the convolution (or linear layer) that feeds it: ``w' = w * g / sqrt(v + eps)``,
``b' = (b - m) * g / sqrt(v + eps) + beta``. The merged model computes the same function with one
pass over the activations fewer per block. Only adjacent pairs inside an ``nn.Sequential`` are
folded (that is how every landstack architecture arranges them); anything else is left as is.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn

_FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@torch.no_grad()
def _folded(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    assert isinstance(layer, _FOLDABLE)
    assert bn.running_mean is not None and bn.running_var is not None
    out = copy.deepcopy(layer)
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    w = out.weight
    w.mul_(scale.reshape((-1,) + (1,) * (w.dim() - 1)))
    old_bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
    out.bias = nn.Parameter(old_bias * scale + shift)
    return out


def _pairs_fold(seq: nn.Sequential) -> int:
    folded = 0
    keys = list(seq._modules.keys())
    for a, b in itertools.pairwise(keys):
        layer, bn = seq._modules[a], seq._modules[b]
        if (
            isinstance(layer, _FOLDABLE)
            and isinstance(bn, _NORMS)
            and bn.track_running_stats
            and bn.running_mean is not None
            and bn.num_features == layer.weight.shape[0]
        ):
            seq._modules[a] = _folded(layer, bn)
            seq._modules[b] = nn.Identity()
            folded += 1
    return folded


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """A copy of `model` (eval mode) with every Conv/Linear + BatchNorm pair merged; and their count.

    The original module is not changed. Numerically equal to the unfolded model in eval mode
    within float rounding.
    """
    out = copy.deepcopy(model).eval()
    folded = 0
    for m in out.modules():
        if isinstance(m, nn.Sequential):
            folded += _pairs_fold(m)
    return out, folded
