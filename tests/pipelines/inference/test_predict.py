"""The streaming predictor on a synthetic tile: outputs, nodata, and seamless patch windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from landstack.catalog.grid import TileGrid
from landstack.pipelines.features import FeatureConfig
from landstack.pipelines.inference.backends import LocalBackend
from landstack.pipelines.inference.predict import PROB_NODATA, Job, TilePredictor, UnitModel

YEAR = 2023


@pytest.fixture(scope="module")
def setup(s2_archive: Any, tiny_registry: str) -> tuple[Any, TileGrid, LocalBackend]:
    from landstack.catalog.grid import Aoi
    from landstack.pipelines.ingest import load_stack, read_static_items

    store, result, _cfg = s2_archive
    items = read_static_items(store.href(result.collection_key))
    aoi = Aoi.around(16.3, 48.2, 900)
    grid = TileGrid.from_bounds(aoi.to_crs("EPSG:3035"), 10.0, "EPSG:3035")
    cfg = FeatureConfig()
    bands = list(dict.fromkeys([*cfg.needed_bands, *cfg.quantile_bands]))
    # held in memory: these tests are about the predictor's windows and encoding, not about reading
    stack = load_stack(items, bands, aoi=Aoi(grid.bounds, "EPSG:3035"), crs="EPSG:3035", chunks=128).load()
    assert (stack.sizes["y"], stack.sizes["x"]) == grid.shape
    return stack, grid, LocalBackend(tiny_registry, device="cpu")


def _jobs(backend: LocalBackend) -> list[Job]:
    return [
        Job("clcplus-backbone", [UnitModel("all", backend.model("tempcnn"))]),
        Job("hrl-imperviousness", [UnitModel("all", backend.model("unet-imd"))]),
        Job("cisc", [UnitModel("all", backend.model("impervious"))]),
    ]


def test_outputs_encoding_and_nodata(setup: Any, tmp_path: Path) -> None:
    stack, grid, backend = setup
    pred = TilePredictor(stack, grid, YEAR, backend, window=48, halo=16).run(_jobs(backend), tmp_path)
    assert set(pred.files) == {"data-score", "medians", "clcplus-backbone", "hrl-imperviousness", "cisc"}
    with rasterio.open(pred.files["data-score"]) as src:
        score = src.read(1)
        assert src.crs.to_epsg() == 3035 and (src.height, src.width) == grid.shape
    assert score.max() > 10  # many valid observations per pixel in the synthetic archive
    with rasterio.open(pred.files["clcplus-backbone"]) as src:
        probs = src.read()
        assert src.count == 11 and src.nodata == PROB_NODATA and src.dtypes[0] == "uint8"
        assert [src.descriptions[i] for i in range(11)] == [str(v) for v in range(1, 12)]
    valid = score > 0
    sums = probs[:, valid].astype(int).sum(axis=0)
    assert np.all(np.abs(sums - 250) <= 6)  # rounding of 11 classes
    assert np.all(probs[:, ~valid] == PROB_NODATA)
    with rasterio.open(pred.files["hrl-imperviousness"]) as src:
        imd = src.read(1)
        assert src.dtypes[0] == "float32"
    assert np.isfinite(imd[valid]).all() and np.isnan(imd[~valid]).all()
    with rasterio.open(pred.files["cisc"]) as src:
        assert src.count == 4


def test_patch_windows_are_seamless(setup: Any, tmp_path: Path) -> None:
    """A patch model predicted in windows with a halo equals the tile predicted whole."""
    stack, grid, backend = setup
    jobs = [Job("imd", [UnitModel("all", backend.model("unet-imd"))])]
    whole = TilePredictor(stack, grid, YEAR, backend, window=max(grid.shape), halo=0).run(
        jobs, tmp_path / "a"
    )
    windowed = TilePredictor(stack, grid, YEAR, backend, window=32, halo=32).run(jobs, tmp_path / "b")
    with rasterio.open(whole.files["imd"]) as a, rasterio.open(windowed.files["imd"]) as b:
        x, y = a.read(1), b.read(1)
    both = np.isfinite(x) & np.isfinite(y)
    assert both.sum() > 0.9 * x.size
    assert np.abs(x[both] - y[both]).max() < 1e-3


def test_reads_each_stack_block_about_once(setup: Any, tmp_path: Path) -> None:
    """With a halo, windows overlap; the reader still reads each block once per row of windows or so."""
    from landstack.pipelines.inference.predict import stack_block

    stack, grid, backend = setup
    jobs = [Job("imd", [UnitModel("all", backend.model("unet-imd"))])]
    block = stack_block(jobs, 32, 16)
    assert block == 16 and 32 % block == 0
    pred = TilePredictor(stack.chunk({"x": block, "y": block}), grid, YEAR, backend, window=32, halo=16).run(
        jobs, tmp_path
    )
    n = -(-grid.height // block) * -(-grid.width // block)
    # vertically the halo rows are read again with the next row of windows: (32 + 2 * 16) / 32
    assert n <= pred.blocks_read <= 2 * n


def test_torch_feature_path_equals_numpy(setup: Any, tmp_path: Path) -> None:
    """The device feature path (torch, here on CPU) gives the numpy path's outputs."""
    stack, grid, backend = setup
    a = TilePredictor(stack, grid, YEAR, backend, window=48, halo=16).run(_jobs(backend), tmp_path / "np")
    b = TilePredictor(stack, grid, YEAR, backend, window=48, halo=16, feature_device="cpu").run(
        _jobs(backend), tmp_path / "torch"
    )
    for key in ("data-score", "clcplus-backbone", "cisc"):
        with rasterio.open(a.files[key]) as x, rasterio.open(b.files[key]) as y:
            assert np.abs(x.read().astype(int) - y.read().astype(int)).max() <= 1, key
    for key in ("medians", "hrl-imperviousness"):
        with rasterio.open(a.files[key]) as x, rasterio.open(y_path := b.files[key]) as y:
            u, v = x.read(), y.read()
        assert np.array_equal(np.isnan(u), np.isnan(v)), y_path
        np.testing.assert_allclose(u, v, atol=1e-3, equal_nan=True)
