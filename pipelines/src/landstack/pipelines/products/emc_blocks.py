"""EMC-BUILT reprojection and aggregation block by block, so memory follows the block, not the cell.

For each target grid (World Mollweide 10 m snapped to 1000 m; WGS84 3" snapped to 30") the
target is cut into blocks whose sides are multiples of the aggregation factors (100 px at 10 m for
1 km, 10 px at 3" for 30"), aligned with the snap. Each block reads only the source window under
it (plus a margin) from the 10 m layers, is reprojected (sum for S/NRES, mean for greenness) with
a halo of target pixels that is then cut off, aggregated inside the block, encoded, and written
into one staged tiled GeoTIFF per layer; the caller delivers each layer from its staged file.

The halo keeps GDAL's chunk-edge artefacts of sum/average resampling (GDAL < 3.12) out of the
kept pixels. GDAL 3.10's sum/average resampling still normalises per warped chunk, so the 10 m
and 3" values differ slightly from one whole-array warp (which GDAL itself chunks by its warp
memory limit); totals are preserved either way (see tests/pipelines/products/test_emc_blocks.py).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio import warp
from rasterio.io import DatasetReader
from rasterio.windows import Window

from landstack.pipelines.products import codes, emc_built
from landstack.pipelines.products.errors import ShapeError
from landstack.pipelines.products.raster import Grid, windows

PRODUCTS = ("s", "nres", "greenness")
BLOCK = 2000  # source (10 m) pixels per block side
SOURCE_MARGIN = 4  # source pixels beyond a block's footprint: covers the resampling footprint
DST_HALO = 8  # target pixels warped around a block and cut off (chunk-edge artefacts)

Reader = Callable[[Window], dict[str, np.ndarray]]


def target_grids(src: Grid) -> dict[str, tuple[Grid, int]]:
    """The fine target grids ("10m" Mollweide, "3ss" WGS84) of a 10 m source grid, each with its
    aggregation factor to the coarsest level (100, 10); the same grids as :func:`emc_built.emc_products`."""
    moll = codes.layer("emc-built-s-10m").grid
    base = emc_built.target_grid(src.crs, src.transform, src.shape, moll.crs, moll.resolution, snap=1000.0)
    spec3 = codes.layer("emc-built-s-3ss")
    res3 = emc_built.layer_resolution(spec3)
    g3 = emc_built.target_grid(src.crs, src.transform, src.shape, spec3.grid.crs, res3, snap=10 * res3)
    return {"10m": (base, 100), "3ss": (g3, 10)}


def _coarse(grid: Grid, factor: int) -> Grid:
    res = grid.transform.a * factor
    t = grid.transform
    return Grid(
        grid.crs, Affine(res, 0, t.c, 0, -res, t.f), (grid.shape[0] // factor, grid.shape[1] // factor)
    )


def level_grids(src: Grid) -> dict[str, Grid]:
    """Grid of every level suffix ("10m", "100m", "1km", "3ss", "30ss")."""
    (base, _), (g3, _) = target_grids(src).values()
    return {
        "10m": base,
        "100m": _coarse(base, 10),
        "1km": _coarse(base, 100),
        "3ss": g3,
        "30ss": _coarse(g3, 10),
    }


def block_shape(src: Grid, dst: Grid, block: int, factor: int) -> tuple[int, int]:
    """(rows, cols) of target blocks spanning about `block` source pixels, multiples of `factor`."""
    t = src.transform
    cx, cy = t @ (src.shape[1] / 2, src.shape[0] / 2)
    xs, ys = warp.transform(src.crs, dst.crs, [cx, cx + t.a * block, cx], [cy, cy, cy + t.e * block])
    cols = math.hypot(xs[1] - xs[0], ys[1] - ys[0]) / abs(dst.transform.a)
    rows = math.hypot(xs[2] - xs[0], ys[2] - ys[0]) / abs(dst.transform.e)
    return max(factor, int(rows) // factor * factor), max(factor, int(cols) // factor * factor)


def _blocks(shape: tuple[int, int], rows: int, cols: int) -> Iterator[Window]:
    for r in range(0, shape[0], rows):
        for c in range(0, shape[1], cols):
            yield Window(c, r, min(cols, shape[1] - c), min(rows, shape[0] - r))


def source_window(src: Grid, dst: Grid, win: Window, margin: int = SOURCE_MARGIN) -> Window | None:
    """The window of `src` under the target window `win` plus `margin` pixels, clipped; None if empty."""
    t = dst.transform
    left, top = t @ (win.col_off, win.row_off)
    right, bottom = t @ (win.col_off + win.width, win.row_off + win.height)
    sl, sb, sr, st = warp.transform_bounds(dst.crs, src.crs, left, bottom, right, top, densify_pts=21)
    s = src.transform
    c0 = max(0, math.floor((sl - s.c) / s.a) - margin)
    c1 = min(src.shape[1], math.ceil((sr - s.c) / s.a) + margin)
    r0 = max(0, math.floor((st - s.f) / s.e) - margin)
    r1 = min(src.shape[0], math.ceil((sb - s.f) / s.e) + margin)
    if c0 >= c1 or r0 >= r1:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def _halo(win: Window, shape: tuple[int, int], halo: int) -> tuple[Window, tuple[slice, slice]]:
    r0, c0 = max(0, win.row_off - halo), max(0, win.col_off - halo)
    r1 = min(shape[0], win.row_off + win.height + halo)
    c1 = min(shape[1], win.col_off + win.width + halo)
    inner = (
        slice(win.row_off - r0, win.row_off - r0 + win.height),
        slice(win.col_off - c0, win.col_off - c0 + win.width),
    )
    return Window(c0, r0, c1 - c0, r1 - r0), inner


def _sub(grid: Grid, win: Window) -> Grid:
    return Grid(
        grid.crs, grid.transform @ Affine.translation(win.col_off, win.row_off), (win.height, win.width)
    )


def fine_blocks(
    read: Reader, src: Grid, dst: Grid, rows: int, cols: int
) -> Iterator[tuple[Window, dict[str, np.ndarray]]]:
    """(window, {product: fine values}) of every block of the target grid `dst`, reprojected from
    the source windows `read` returns ({product: float32, NaN = no data})."""
    for win in _blocks(dst.shape, rows, cols):
        outer, inner = _halo(win, dst.shape, DST_HALO)
        swin = source_window(src, dst, outer)
        if swin is None:
            yield win, {p: np.full((win.height, win.width), np.nan) for p in PRODUCTS}
            continue
        values = read(swin)
        st = src.transform @ Affine.translation(swin.col_off, swin.row_off)
        out = {}
        for p in PRODUCTS:
            move = emc_built.reproject_mean if p == "greenness" else emc_built.reproject_sum
            out[p] = move(values[p], src.crs, st, _sub(dst, outer))[inner]
        yield win, out


def _staged(path: Path, spec_id: str, grid: Grid) -> Any:
    spec = codes.layer(spec_id)
    return rasterio.open(
        path, "w", driver="GTiff", width=grid.shape[1], height=grid.shape[0], count=1, dtype=spec.dtype,
        crs=grid.crs, transform=grid.transform, nodata=spec.nodata, tiled=True, blockxsize=256,
        blockysize=256, compress="DEFLATE", zlevel=1, BIGTIFF="IF_SAFER",
    )  # fmt: skip


def stage_products(read: Reader, src: Grid, work: Path, block: int = BLOCK) -> dict[str, tuple[Path, Grid]]:
    """Every EMC-BUILT layer (collection id -> staged GeoTIFF and grid), written block by block.

    `read(window)` gives the 10 m S, NRES (m² per cell) and greenness (0-100) of a window of the
    10 m source grid `src`; `block` is the block side in source pixels.
    """
    if block < 100:
        raise ShapeError(f"EMC-BUILT assembly blocks must span at least 100 source pixels, got {block}")
    levels = level_grids(src)
    out: dict[str, tuple[Path, Grid]] = {}
    with contextlib.ExitStack() as stack:
        files: dict[str, Any] = {}
        for p in PRODUCTS:
            for suffix, grid in levels.items():
                cid = f"emc-built-{p}-{suffix}"
                out[cid] = (work / f"{cid}.tif", grid)
                files[cid] = stack.enter_context(_staged(out[cid][0], cid, grid))
        for fine, (grid, factor) in target_grids(src).items():
            rows, cols = block_shape(src, grid, block, factor)
            chain = ("10m", "100m", "1km") if fine == "10m" else ("3ss", "30ss")
            for win, values in fine_blocks(read, src, grid, rows, cols):
                for p in PRODUCTS:
                    merge = emc_built.aggregate_mean if p == "greenness" else emc_built.aggregate_sum
                    level = values[p]
                    for i, suffix in enumerate(chain):
                        if i:
                            level = merge(level, 10)
                        f = 10**i
                        lwin = Window(win.col_off // f, win.row_off // f, win.width // f, win.height // f)
                        cid = f"emc-built-{p}-{suffix}"
                        files[cid].write(emc_built.encode(level, codes.layer(cid)), 1, window=lwin)
    return out


def read_back(path: Path, chunk: int) -> Iterator[tuple[Window, np.ndarray]]:
    """(window, block) pairs of a staged layer, for :func:`assemble.assemble`; removes the file after."""
    try:
        with rasterio.open(path) as ds:
            for win in windows((ds.height, ds.width), chunk):
                yield win, ds.read(1, window=win)
    finally:
        path.unlink(missing_ok=True)


def mosaic_reader(sources: Mapping[str, Sequence[DatasetReader]], grid: Grid) -> Reader:
    """A :data:`Reader` of windows of `grid` mosaicked from open 10 m rasters per product (first
    source with data wins; NaN elsewhere). The sources must be on `grid`'s pixel lattice."""
    t = grid.transform

    def read(win: Window) -> dict[str, np.ndarray]:
        out = {}
        for p, dsets in sources.items():
            arr = np.full((win.height, win.width), np.nan, np.float32)
            left, top = t @ (win.col_off, win.row_off)
            for ds in dsets:
                st = ds.transform
                swin = Window(round((left - st.c) / st.a), round((top - st.f) / st.e), win.width, win.height)
                block = ds.read(1, window=swin, boundless=True, fill_value=np.nan, out_dtype=np.float32)
                fill = np.isnan(arr) & np.isfinite(block)
                arr[fill] = block[fill]
            out[p] = arr
        return out

    return read
