"""Batch-norm folding gives the same outputs as the unfolded model (eval mode)."""

from __future__ import annotations

import pytest
import torch

from landstack.models.folding import fold_batchnorm
from landstack.models.impervious import ImperviousCNN
from landstack.models.tempcnn import TempCNN
from landstack.models.unet import UNet


def _with_stats(model: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.2)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return model.eval()


@pytest.mark.parametrize(
    ("model", "shape", "pairs"),
    [
        (TempCNN(12, 54, 11, filters=16, dense=32), (64, 12, 54), 4),
        (UNet(4, 1, depth=2, width=8), (2, 4, 32, 32), 10),
        (ImperviousCNN(6, 4, width=8, dilations=(1, 2, 4)), (2, 6, 24, 24), 3),
    ],
    ids=["tempcnn", "unet", "impervious"],
)
def test_folded_equals_unfolded(model: torch.nn.Module, shape: tuple[int, ...], pairs: int) -> None:
    torch.manual_seed(0)
    model = _with_stats(model)
    x = torch.randn(*shape)
    folded, n = fold_batchnorm(model)
    assert n == pairs
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())  # original kept
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)
