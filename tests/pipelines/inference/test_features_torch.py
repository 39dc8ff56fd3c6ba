"""The torch feature kernels (the GPU feature path) against the numpy ones, on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from landstack.pipelines import features as fnp
from landstack.pipelines.inference import features_torch as ftorch


@pytest.fixture(scope="module")
def window() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """(T, P) digital numbers and SCL with clouds, gaps, a pixel never valid, and offsets."""
    rng = np.random.default_rng(3)
    t, p = 40, 500
    cfg = fnp.FeatureConfig()
    bands = list(dict.fromkeys([*cfg.needed_bands, *cfg.quantile_bands]))
    dn = {b: rng.integers(1, 9000, (t, p)).astype(np.uint16) for b in bands}
    dn["B04"][rng.random((t, p)) < 0.05] = 0  # missing values
    dn["B08"][:, 7] = 40000  # above int16: the unsigned value must survive the int16 transfer
    scl = rng.choice(np.array([4, 4, 5, 6, 8, 9, 3, 0], np.uint8), (t, p))
    scl[:, 3] = 9  # never valid
    days = np.sort(rng.choice(np.arange(19200, 19740), t, replace=False)).astype(np.float64) + 0.43
    offsets = np.where(np.arange(t) > 20, -1000, 0)
    return dn, scl, days, offsets


def test_series_features_match_numpy(window: tuple) -> None:
    dn, scl, days, offsets = window
    cfg = fnp.FeatureConfig()
    target = fnp._days(fnp.time_steps(2023))
    want, score = fnp.series_features(dn, scl, offsets, days, target, cfg)
    tdn, tscl = ftorch.to_device(dn, scl, "cpu")
    got, tscore = ftorch.series_features(tdn, tscl, offsets, days, target, cfg)
    np.testing.assert_array_equal(tscore.numpy(), score)
    np.testing.assert_array_equal(np.isnan(got.numpy()), np.isnan(want))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5, equal_nan=True)
    assert np.isnan(want[:, :, 3]).all()


def test_unet_features_match_numpy(window: tuple) -> None:
    dn, scl, days, offsets = window
    cfg = fnp.FeatureConfig()
    want, names = fnp.unet_features(dn, scl, offsets, days, cfg)
    tdn, tscl = ftorch.to_device(dn, scl, torch.device("cpu"))
    got, tnames = ftorch.unet_features(tdn, tscl, offsets, days, cfg)
    assert tnames == names
    np.testing.assert_array_equal(np.isnan(got.numpy()), np.isnan(want))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5, equal_nan=True)


def test_nan_quantiles_match_numpy() -> None:
    v = np.random.default_rng(0).normal(size=(30, 200)).astype(np.float32)
    v[np.random.default_rng(1).random(v.shape) < 0.3] = np.nan
    v[:, 0] = np.nan
    qs = [0.1, 0.5, 0.9]
    np.testing.assert_allclose(
        ftorch.nan_quantiles(torch.from_numpy(v), qs).numpy(),
        fnp.nan_quantiles(v, qs),
        atol=1e-6,
        equal_nan=True,
    )
