"""Array-like views of rasters that read only the window they are sliced with.

The block-wise algorithms (:mod:`clcplus_blocks`, :mod:`blend_blocks`, :func:`emc_built.emc_blocks`)
slice their inputs with ``arr[:, rows, cols]`` or ``arr[rows, cols]``; these views turn each such
slice into a rasterio windowed read (a COG in the object store, a local staging file), a
rasterisation of vector features onto the window, or a function of another view's window, so no
input is ever held whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.io import DatasetReader
from rasterio.windows import Window

from landstack.pipelines.products.errors import ShapeError

Slices = tuple[slice, slice]


def _window(rows: slice, cols: slice, shape: tuple[int, int]) -> Window:
    r0, r1, _ = rows.indices(shape[0])
    c0, c1, _ = cols.indices(shape[1])
    return Window(c0, r0, max(0, c1 - c0), max(0, r1 - r0))


def _split(key: Any, ndim: int) -> tuple[Any, slice, slice]:
    """(band selector, rows, cols) of a numpy-style key on a (bands, rows, cols) or (rows, cols) view."""
    key = key if isinstance(key, tuple) else (key,)
    if ndim == 3:
        if len(key) != 3:
            raise ShapeError(f"slice a (bands, rows, cols) view with three indices, got {key!r}")
        return key[0], key[1], key[2]
    if len(key) != 2:
        raise ShapeError(f"slice a (rows, cols) view with two indices, got {key!r}")
    return None, key[0], key[1]


class RasterView:
    """Bands of an open raster as a lazy (bands, rows, cols) array, or one band as (rows, cols).

    `bands` are 1-based band indexes (default: all); with `squeeze` and a single band the view is
    two-dimensional. Only plain slices with step 1 are supported, which is all the block loops use.
    """

    def __init__(self, ds: DatasetReader, bands: Sequence[int] | None = None, squeeze: bool = False) -> None:
        self.ds = ds
        self.bands = list(bands) if bands is not None else list(range(1, ds.count + 1))
        self.squeeze = squeeze and len(self.bands) == 1
        hw = (int(ds.height), int(ds.width))
        self.shape: tuple[int, ...] = hw if self.squeeze else (len(self.bands), *hw)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        sel, rows, cols = _split(key, self.ndim)
        win = _window(rows, cols, self.shape[-2:])  # type: ignore[arg-type]
        if self.squeeze:
            return np.asarray(self.ds.read(self.bands[0], window=win))
        data = np.asarray(self.ds.read(self.bands, window=win))
        return data if sel is None or sel == slice(None) else data[sel]


class Mapped:
    """`fn` applied to each window of another view (e.g. the production area from the data score)."""

    def __init__(self, base: Any, fn: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...]) -> None:
        self.base, self.fn, self.shape = base, fn, shape

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        sel, rows, cols = _split(key, self.ndim)
        base = self.base[(slice(None), rows, cols)] if self.base.ndim == 3 else self.base[rows, cols]
        out = self.fn(base)
        return out if sel is None or sel == slice(None) else out[sel]


class Rasterised:
    """A (rows, cols) view made by rasterising onto each window's grid.

    `burn(shape, transform, crs)` rasterises (features, or a resampled raster) onto a window; the
    window's transform is the tile's shifted by whole pixels, so a pixel is burnt by the same
    pixel-centre rule as on the whole tile.
    """

    def __init__(
        self,
        burn: Callable[[tuple[int, int], Affine, CRS], np.ndarray],
        shape: tuple[int, int],
        transform: Affine,
        crs: CRS,
    ) -> None:
        self.burn, self.shape, self.transform, self.crs = burn, shape, transform, crs
        self.ndim = 2

    def __getitem__(self, key: Any) -> np.ndarray:
        _, rows, cols = _split(key, 2)
        win = _window(rows, cols, self.shape)
        t = self.transform * Affine.translation(win.col_off, win.row_off)
        return self.burn((int(win.height), int(win.width)), t, self.crs)


def halo_slices(win: Window, halo: int, shape: tuple[int, int]) -> tuple[Slices, Slices]:
    """Slices of a block plus `halo` pixels (clipped to the tile), and of the block inside that read."""
    r0, c0 = max(0, win.row_off - halo), max(0, win.col_off - halo)
    r1 = min(shape[0], win.row_off + win.height + halo)
    c1 = min(shape[1], win.col_off + win.width + halo)
    inner = (
        slice(win.row_off - r0, win.row_off - r0 + win.height),
        slice(win.col_off - c0, win.col_off - c0 + win.width),
    )
    return (slice(r0, r1), slice(c0, c1)), inner
