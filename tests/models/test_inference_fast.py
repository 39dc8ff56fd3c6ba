"""The inference form (batch norm folded, chunked, single-threaded CPU workers) gives the same
outputs as the plain eval-mode model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from landstack.models.inference import ChannelsLastTempCNN, InferenceRunner
from landstack.models.modelfile import build_model
from landstack.models.tempcnn import TempCNN


def _metadata(arch: str, hp: dict[str, Any], n_feat: int, task: str = "classification") -> dict[str, Any]:
    out: dict[str, Any] = (
        {"targets": ["imd"], "scale": 100.0}
        if task == "regression"
        else {"classes": [{"value": v, "name": f"c{v}"} for v in range(1, 6)]}
    )
    return {
        "name": f"{arch.lower()}-test",
        "architecture": arch,
        "hyperparameters": hp,
        "task": task,
        "input": {
            "features": [f"F{i}" for i in range(n_feat)],
            "time_steps": 54,
            "norm": {"mean": [0.0] * n_feat, "std": [1.0] * n_feat},
        },
        "output": out,
    }


def _with_stats(model: torch.nn.Module, seed: int = 3) -> torch.nn.Module:
    """Non-trivial batch-norm statistics and normalisation, so folding has something to do."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(1 + 0.2 * torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(0.2 * torch.randn(m.num_features, generator=g))
    return model.eval()


@pytest.fixture(scope="module")
def tempcnn() -> tuple[torch.nn.Module, dict[str, Any]]:
    torch.manual_seed(0)
    meta = _metadata("TempCNN", {"filters": 16, "dense": 32}, 12)
    model = _with_stats(build_model(meta))
    assert isinstance(model, TempCNN)
    model.normalise.set_stats(torch.linspace(-1, 1, 12), torch.linspace(0.5, 2, 12))
    return model, meta


def _reference(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(model.eval()(x.float()), dim=1)


@pytest.mark.parametrize("n", [1, 3, 257, 1001])
def test_tempcnn_probabilities_equal_plain_model(
    tempcnn: tuple[torch.nn.Module, dict[str, Any]], n: int
) -> None:
    model, meta = tempcnn
    x = torch.randn(n, 12, 54, generator=torch.Generator().manual_seed(n))
    x[0, 3, 10:20] = float("nan")  # a gap in a time series: the module's own standardisation fills it
    runner = InferenceRunner(model, meta, "cpu", chunk_size=64, workers=2)
    assert runner.folded == 4
    assert any(isinstance(m, ChannelsLastTempCNN) for m in runner.module.modules())
    threads = torch.get_num_threads()
    y = runner(x)
    assert torch.get_num_threads() == threads  # the workers' single-threading does not leak out
    assert y.shape == (n, 5) and y.dtype == torch.float32
    torch.testing.assert_close(y, _reference(model, x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(y.sum(dim=1), torch.ones(n), rtol=1e-5, atol=1e-5)


def test_tempcnn_defaults_fp16_input_and_repeat_calls(
    tempcnn: tuple[torch.nn.Module, dict[str, Any]],
) -> None:
    model, meta = tempcnn
    runner = InferenceRunner(model, meta)  # CPU defaults: cache-sized chunks, one worker per thread
    assert runner.workers == torch.get_num_threads()
    x16 = torch.randn(700, 12, 54, generator=torch.Generator().manual_seed(1)).half()
    want = _reference(model, x16)
    for _ in range(2):  # the worker pool is reused
        torch.testing.assert_close(runner(x16), want, rtol=1e-4, atol=1e-5)
    sequential = InferenceRunner(model, meta, workers=1, chunk_size=10_000)
    torch.testing.assert_close(sequential(x16), runner(x16), rtol=1e-5, atol=1e-6)
    assert runner(x16[:0]).shape == (0, 5)


@pytest.mark.parametrize(
    ("arch", "hp", "task", "shape"),
    [
        ("UNet", {"depth": 2, "width": 8}, "regression", (3, 6, 32, 32)),
        ("ImperviousCNN", {"width": 8, "dilations": [1, 2]}, "classification", (3, 6, 24, 24)),
    ],
    ids=["unet", "impervious"],
)
def test_patch_models_equal_plain_model(
    arch: str, hp: dict[str, Any], task: str, shape: tuple[int, ...]
) -> None:
    torch.manual_seed(1)
    meta = _metadata(arch, hp, shape[1], task)
    model = _with_stats(build_model(meta))
    runner = InferenceRunner(model, meta)
    assert runner.folded > 0 and runner.workers == 1  # patch models keep intra-op threads
    x = torch.randn(*shape)
    with torch.no_grad():
        want = model(x) if task == "regression" else torch.softmax(model(x), dim=1)
    got = runner(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


def test_tempcnn_ensemble_and_unfolded(tempcnn: tuple[torch.nn.Module, dict[str, Any]]) -> None:
    _, meta = tempcnn
    torch.manual_seed(2)
    meta = {**meta, "ensemble_size": 3, "hyperparameters": {"filters": 8, "dense": 16, "blocks": 2}}
    model = _with_stats(build_model(meta))
    x = torch.randn(301, 12, 54, generator=torch.Generator().manual_seed(5))
    fast = InferenceRunner(model, meta, chunk_size=32, workers=2)
    assert sum(isinstance(m, ChannelsLastTempCNN) for m in fast.module.modules()) == 3
    torch.testing.assert_close(fast(x), _reference(model, x), rtol=1e-4, atol=1e-5)
    unfolded = InferenceRunner(model, meta, fold=False)  # batch norm kept: the plain layers run
    assert not any(isinstance(m, ChannelsLastTempCNN) for m in unfolded.module.modules())
    torch.testing.assert_close(unfolded(x), _reference(model, x), rtol=1e-5, atol=1e-6)
