"""Reading a Sentinel-2 stack window by window: the reader protocol, the odc-stac reader, and the
choice between it and the direct COG reader (`direct.DirectStack`) for a tile.

`reference_stack` finds the reference year's acquisitions and returns a `DirectStack` (one
windowed read per asset and window, much faster) unless the tile grid is coarser than an asset,
in which case it returns odc-stac's lazy stack (which reads overviews).

The odc-stac reader, `StackReader`, reads each source chunk about once:

Windows with a halo overlap their neighbours, and a dask chunk is read whole whenever any pixel of
it is wanted, so reading every window's extent on its own reads a chunk up to nine times. The
reader keeps the blocks (chunks of the stack, all dates) of the current read extent and, moving
along a row of windows, reads only the blocks not held yet: horizontally each block is read once,
vertically the halo rows again with the next row of windows ((window + 2 halo) / window). Only the
blocks of one read extent are held, so memory follows the window, not the tile.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

import numpy as np
import xarray as xr

from landstack.catalog.grid import Aoi, TileGrid
from landstack.pipelines.inference.direct import DirectStack
from landstack.pipelines.inference.windows import Span

log = logging.getLogger(__name__)


class WindowReader(Protocol):
    """What the predictor reads windows with."""

    blocks_read: int

    def read(self, rows: Span, cols: Span) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Band arrays (time, rows, cols) and the SCL of one read extent."""
        ...

    def close(self) -> None:
        """Release threads or files."""
        ...


def reference_stack(
    grid: TileGrid,
    year: int,
    bands: list[str],
    *,
    api_url: str | None = None,
    catalog_href: str | None = None,
    collection: str | None = None,
    max_cloud: float | None = None,
    chunks: int = 256,
    direct: bool = True,
) -> xr.Dataset | DirectStack:
    """The stack of `bands` + SCL on `grid` for a reference year ± 3 months (the period of
    `ingest.load_reference_year`): a `DirectStack` when `direct` and the grid allows, else the lazy
    odc-stac stack chunked by `chunks`."""
    from landstack.pipelines import ingest
    from landstack.pipelines.settings import get_settings

    aoi = Aoi(grid.bounds, grid.crs)
    items = ingest.search_items(
        aoi,
        f"{year - 1}-10-01",
        f"{year + 1}-03-31",
        api_url=api_url,
        catalog_href=catalog_href,
        collection=collection or ingest.DEFAULT_COLLECTION,
        max_cloud=ingest.DEFAULT_MAX_CLOUD if max_cloud is None else max_cloud,
    )
    log.info("%d acquisitions for %s", len(items), aoi)
    if direct:
        stack = DirectStack(items, bands, grid, s3=get_settings().s3())
        why = stack.supports()
        if why is None:
            return stack
        stack.close()
        log.info("reading through odc-stac: %s", why)
    ingest.configure_gdal()
    return ingest.load_stack(items, bands, aoi=aoi, crs=grid.crs, resolution=grid.resolution, chunks=chunks)


def block_size(window: int, halo: int, multiple: int = 1) -> int:
    """The stack's chunk size for windows of `window` (+ `halo`) pixels: a divisor of the window.

    Without a halo the window itself (every chunk read once). With one, the largest divisor of the
    window that is a multiple of `multiple` and no larger than max(halo, window / 2): big enough to
    keep the task count low, small enough that a halo does not pull in whole neighbouring windows.
    """
    if not halo:
        return window
    limit = max(halo, window // 2)
    best = math.gcd(window, halo) or window
    for b in range(multiple, limit + 1, multiple):
        if window % b == 0:
            best = max(best, b)
    return best


class StackReader:
    """Numpy blocks of `bands` + SCL of a lazy (time, y, x) stack, read once per block where possible."""

    def __init__(self, stack: xr.Dataset, bands: list[str], block: int) -> None:
        self.ds = stack[[*bands, "SCL"]]
        self.bands = bands
        self.block = block
        self.height, self.width = stack.sizes["y"], stack.sizes["x"]
        self._cache: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        self.blocks_read = 0

    def _span(self, s: Span) -> range:
        return range(s.start // self.block, -(-s.stop // self.block))

    def _load(self, rows: range, cols: range) -> None:
        b = self.block
        y0, y1 = rows.start * b, min(rows.stop * b, self.height)
        x0, x1 = cols.start * b, min(cols.stop * b, self.width)
        part = self.ds.isel(y=slice(y0, y1), x=slice(x0, x1)).compute()
        arrays = {str(v): np.asarray(part[v].values) for v in part.data_vars}
        for i in rows:
            for j in cols:
                sl = (slice(None), slice(i * b - y0, (i + 1) * b - y0), slice(j * b - x0, (j + 1) * b - x0))
                self._cache[(i, j)] = {v: a[sl] for v, a in arrays.items()}
                self.blocks_read += 1

    def read(self, rows: Span, cols: Span) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Band arrays (time, rows, cols) and the SCL of one read extent."""
        br, bc = self._span(rows), self._span(cols)
        self._cache = {k: v for k, v in self._cache.items() if k[0] in br and k[1] in bc}
        missing = [(i, j) for i in br for j in bc if (i, j) not in self._cache]
        if missing:
            i0, i1 = min(m[0] for m in missing), max(m[0] for m in missing) + 1
            j0, j1 = min(m[1] for m in missing), max(m[1] for m in missing) + 1
            self._load(range(i0, i1), range(j0, j1))
        b = self.block
        sl = (
            slice(None),
            slice(rows.start - br.start * b, rows.stop - br.start * b),
            slice(cols.start - bc.start * b, cols.stop - bc.start * b),
        )
        out = {}
        for v in [*self.bands, "SCL"]:
            grid = [[self._cache[(i, j)][v] for j in bc] for i in br]
            out[v] = np.concatenate([np.concatenate(r, axis=2) for r in grid], axis=1)[sl]
        scl = out.pop("SCL")
        return out, scl

    def close(self) -> None:
        """Drop the held blocks."""
        self._cache = {}
