"""Mosaicking roll-out tiles into a product tile, block by block.

Sources on the product grid are read window by window (others through a nearest-neighbour warped
view onto it); in each output block the first source holding data wins, so overlaps resolve the
same way everywhere and there is no seam. Only one block per source is in memory at a time.

A layer may name `weak` values that a later source's other data replaces: a 30 m pixel straddling
two roll-out tiles is aggregated by each from its part only, and the CISC valid mask's "Invalid"
from the smaller part must not win over the "Valid" of the larger (whose class the classes layer
takes, as the smaller part's class is nodata).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from landstack.catalog.spec import LayerSpec
from landstack.pipelines.products import codes
from landstack.pipelines.products.errors import DeliveryError
from landstack.pipelines.products.raster import Grid, windows
from landstack.storage import S3Options, gdal_env

CHUNK = 1024


def _aligned(src: DatasetReader, grid: Grid) -> bool:
    t, g = src.transform, grid.transform
    if src.crs != grid.crs or not np.allclose((t.a, t.e), (g.a, g.e)):
        return False
    col, row = (t.c - g.c) / g.a, (t.f - g.f) / g.e
    return abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6


def _bounds(win: Window, grid: Grid) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of a window of a north-up grid."""
    g = grid.transform
    left, top = g.c + win.col_off * g.a, g.f + win.row_off * g.e
    return left, top + win.height * g.e, left + win.width * g.a, top


def _read(
    src: DatasetReader | WarpedVRT, grid: Grid, win: Window, nodata: float, dtype: np.dtype
) -> np.ndarray:
    if isinstance(src, WarpedVRT):  # already on the product grid
        return src.read(1, window=win, out_dtype=dtype)
    left, _, _, top = _bounds(win, grid)
    t = src.transform
    swin = Window(round((left - t.c) / t.a), round((top - t.f) / t.e), win.width, win.height)
    return src.read(1, window=swin, boundless=True, fill_value=nodata, out_dtype=dtype)


def mosaic_blocks(
    sources: Sequence[str],
    grid: Grid,
    spec: LayerSpec,
    chunk: int = CHUNK,
    s3: S3Options | None = None,
    weak: Sequence[float] = (),
) -> Iterator[tuple[Window, np.ndarray]]:
    """(window, block) pairs of the product tile `grid` composed from `sources` (URLs or paths).

    Sources that do not intersect a block are not read for it. The layer's nodata fills the gaps;
    where a source holds one of the `weak` values, a later source's other data replaces it.
    """
    nodata, dtype = spec.nodata, codes.np_dtype(spec)
    with contextlib.ExitStack() as stack:
        stack.enter_context(gdal_env(s3))
        readers: list[DatasetReader | WarpedVRT] = []
        for url in sources:
            try:
                src = stack.enter_context(rasterio.open(url))
            except RasterioError as e:
                raise DeliveryError(f"cannot open roll-out tile {url}: {e}") from e
            if not _aligned(src, grid):
                src = stack.enter_context(
                    WarpedVRT(
                        src,
                        crs=grid.crs,
                        transform=grid.transform,
                        width=grid.shape[1],
                        height=grid.shape[0],
                        resampling=Resampling.nearest,
                        nodata=nodata,
                    )
                )
            readers.append(src)
        for win in windows(grid.shape, chunk):
            left, bottom, right, top = _bounds(win, grid)
            out = np.full((win.height, win.width), nodata, dtype)
            for src in readers:
                sl, sb, sr, st = src.bounds
                if sr <= left or sl >= right or st <= bottom or sb >= top:
                    continue
                block = _read(src, grid, win, nodata, dtype)
                if src.nodata is not None and src.nodata != nodata:
                    block[block == src.nodata] = nodata
                replaceable = out == nodata
                if weak:
                    replaceable |= np.isin(out, weak) & ~np.isin(block, weak)
                fill = replaceable & (block != nodata)
                out[fill] = block[fill]
            yield win, out
