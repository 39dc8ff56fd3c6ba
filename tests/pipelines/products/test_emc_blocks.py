"""Block-wise EMC-BUILT assembly (`emc_blocks`) against the whole-array path (`emc_built.emc_products`).

GDAL 3.10's sum/average warping normalises per warped chunk, so a whole-array warp is itself not
one fixed answer: the same call with a 1 MB warp-memory limit (GDAL then chunks it) moves pixels
too. The block path is held to that yardstick for S/NRES, and to stated tolerances for greenness.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio import warp
from rasterio.crs import CRS
from rasterio.windows import Window

from landstack.pipelines.products import codes, emc_blocks, emc_built
from landstack.pipelines.products.raster import Grid

SHAPE = (600, 700)  # 6 x 7 km at 10 m: several blocks of 200 source px on every target grid
BLOCK = 200
SRC = Grid(CRS.from_epsg(3035), Affine(10, 0, 4_800_000, 0, -10, 2_850_000), SHAPE)


def _layers() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    s = (rng.uniform(0, 1, SHAPE) ** 4 * 100).astype(np.float32)
    s[s < 20] = 0.0
    s[:40, :90] = np.nan  # no data inside the area
    nres = (s * 0.3).astype(np.float32)
    green = rng.uniform(0, 100, SHAPE).astype(np.float32)
    green[s == 0] = np.nan
    return {"s": s, "nres": nres, "greenness": green}


def _reader(layers: dict[str, np.ndarray]) -> emc_blocks.Reader:
    def read(win: Window) -> dict[str, np.ndarray]:
        rows = slice(win.row_off, win.row_off + win.height)
        cols = slice(win.col_off, win.col_off + win.width)
        return {p: v[rows, cols] for p, v in layers.items()}

    return read


Layers = dict[str, tuple[np.ndarray, Any]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, np.ndarray], Layers, Layers, Layers]:
    """The 10 m layers, the block path, the whole-array path and the whole-array path chunked by GDAL."""
    layers = _layers()
    staged = emc_blocks.stage_products(_reader(layers), SRC, Path(tmp_path_factory.mktemp("emc")), BLOCK)
    blocked = {}
    for cid, (path, grid) in staged.items():
        with rasterio.open(path) as ds:
            blocked[cid] = (ds.read(1), grid)
    whole = emc_built.emc_products(layers, SRC.crs, SRC.transform)
    real = warp.reproject
    with pytest.MonkeyPatch.context() as mp:  # the same GDAL warp, chunked by a 1 MB memory limit
        mp.setattr(emc_built.warp, "reproject", functools.partial(real, warp_mem_limit=1))
        chunked = emc_built.emc_products(layers, SRC.crs, SRC.transform)
    return layers, blocked, whole, chunked


def _diff(a: np.ndarray, b: np.ndarray, nodata: float) -> np.ndarray:
    valid = (a != nodata) & (b != nodata)
    return np.abs(a[valid].astype(np.int64) - b[valid].astype(np.int64))


def test_same_layers_and_grids(runs) -> None:  # type: ignore[no-untyped-def]
    _, blocked, whole, _ = runs
    assert sorted(whole) == sorted(blocked) and len(whole) == 15
    for cid, (arr, grid) in whole.items():
        b, g = blocked[cid]
        assert g.shape == grid.shape and g.transform.almost_equals(grid.transform), cid
        assert b.shape == arr.shape and b.dtype == arr.dtype, cid


def test_several_blocks_per_grid_on_whole_cells() -> None:
    for fine, (grid, factor) in emc_blocks.target_grids(SRC).items():
        rows, cols = emc_blocks.block_shape(SRC, grid, BLOCK, factor)
        assert rows % factor == 0 and cols % factor == 0
        assert grid.shape[0] > rows and grid.shape[1] > cols, fine  # more than one block each way
        assert grid.shape[0] % factor == 0 and grid.shape[1] % factor == 0


def test_coarse_levels_are_sums_of_the_fine_blocks(runs) -> None:  # type: ignore[no-untyped-def]
    layers, blocked, _, _ = runs
    grid, factor = emc_blocks.target_grids(SRC)["10m"]
    rows, cols = emc_blocks.block_shape(SRC, grid, BLOCK, factor)
    fine = np.full(grid.shape, np.nan)
    for win, values in emc_blocks.fine_blocks(_reader(layers), SRC, grid, rows, cols):
        fine[win.row_off : win.row_off + win.height, win.col_off : win.col_off + win.width] = values["s"]
    km = emc_built.aggregate_sum(fine, 100)  # whole-grid sums: every 1 km cell lies in one block
    spec = codes.layer("emc-built-s-1km")
    np.testing.assert_array_equal(blocked["emc-built-s-1km"][0], emc_built.encode(km, spec))
    # the fine level preserves the 10 m total (GDAL sum resampling), the 1 km sums it to the m²
    total = float(np.nansum(layers["s"]))
    assert np.nansum(fine) == pytest.approx(total, rel=1e-5)
    s1k = blocked["emc-built-s-1km"][0]
    assert abs(int(s1k[s1k != spec.nodata].astype(np.int64).sum()) - np.nansum(fine)) <= 0.5 * km.size


@pytest.mark.parametrize("product", ["s", "nres"])
def test_totals_preserved(runs, product: str) -> None:  # type: ignore[no-untyped-def]
    layers, blocked, whole, _ = runs
    total = float(np.nansum(layers[product]))
    for suffix in ("10m", "100m", "1km", "3ss", "30ss"):
        cid = f"emc-built-{product}-{suffix}"
        nodata = codes.layer(cid).nodata
        arr = blocked[cid][0]
        got = float(arr[arr != nodata].astype(np.int64).sum())
        ref = float(whole[cid][0][whole[cid][0] != nodata].astype(np.int64).sum())
        # rounding small 10 m values to whole m² moves the 10 m total by up to ~0.15 %; coarser
        # levels round far fewer, larger values
        assert got == pytest.approx(total, rel=2e-3 if suffix == "10m" else 5e-5), cid
        assert got == pytest.approx(ref, rel=5e-4 if suffix == "10m" else 5e-5), cid


@pytest.mark.parametrize("product", ["s", "nres"])
def test_sums_match_whole_array_within_gdal_chunking(runs, product: str) -> None:  # type: ignore[no-untyped-def]
    """Per pixel, blocks differ from the whole-array warp no more than GDAL's own chunking does."""
    _, blocked, whole, chunked = runs
    for suffix in ("10m", "100m", "1km", "3ss", "30ss"):
        cid = f"emc-built-{product}-{suffix}"
        nodata = codes.layer(cid).nodata
        ref = whole[cid][0]
        ours, gdal = _diff(ref, blocked[cid][0], nodata), _diff(ref, chunked[cid][0], nodata)
        assert np.percentile(ours, 99) <= np.percentile(gdal, 99) + 1, cid
        assert ours.max() <= gdal.max() + 1, cid
        mismatch = ((ref == nodata) != (blocked[cid][0] == nodata)).sum()
        assert mismatch <= max(2, 0.002 * ref.size), cid  # edge pixels of the no-data areas


def test_greenness_matches_whole_array(runs) -> None:  # type: ignore[no-untyped-def]
    _, blocked, whole, _ = runs
    for suffix in ("10m", "100m", "1km", "3ss", "30ss"):
        cid = f"emc-built-greenness-{suffix}"
        nodata = codes.layer(cid).nodata
        ref, ours = whole[cid][0], blocked[cid][0]
        d = _diff(ref, ours, nodata)
        assert (d == 0).mean() >= 0.75 and np.percentile(d, 99) <= 2, cid
        assert ((ref == nodata) != (ours == nodata)).sum() <= 0.01 * ref.size, cid
