"""A tile's rasters in and out of the object store without holding any of them whole.

:class:`StoreRasters` opens the COGs behind store hrefs for windowed reads (as
:class:`windowed.RasterView` views); :class:`LayerWriter` takes the tile's layers block by block into
tiled staging GeoTIFFs on local disk (:class:`cog.StagedLayer` for layers on a catalogue spec,
:class:`cog.StagedRaster` for plain rasters), copies each into its COG, uploads it under a key
prefix and records it as a STAC asset.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from landstack.catalog.grid import TileGrid
from landstack.catalog.items import Asset, file_info
from landstack.catalog.stac import COG_MEDIA_TYPE
from landstack.pipelines.errors import BadInputError
from landstack.pipelines.products import codes, cog
from landstack.pipelines.products.raster import Grid
from landstack.pipelines.products.windowed import RasterView
from landstack.storage import ObjectStore
from landstack.storage.errors import StoreError


def staging_grid(tile: TileGrid) -> Grid:
    """The raster grid (rasterio CRS) of a catalogue tile grid."""
    return Grid(CRS.from_user_input(tile.crs), tile.transform, tile.shape)


def block_slices(win: Window) -> tuple[slice, slice]:
    """(rows, cols) slices of a block window."""
    return slice(win.row_off, win.row_off + win.height), slice(win.col_off, win.col_off + win.width)


class StoreRasters:
    """Opens assets of store items for windowed reads; datasets stay open until `stack` closes."""

    def __init__(self, store: ObjectStore, stack: contextlib.ExitStack[Any]) -> None:
        self.store, self.stack = store, stack

    def open(self, href: str, what: str) -> tuple[DatasetReader, list[str]]:
        """The open raster behind an href of the store and its band names."""
        try:
            key = self.store.key_of(href)
            if not self.store.exists(key):
                raise StoreError(f"{href} does not exist")
            ds = self.stack.enter_context(rasterio.open(self.store.gdal_path(key)))
        except (StoreError, RasterioError) as e:
            raise BadInputError(f"{what}: cannot read {href}: {e}; run the step that writes it first") from e
        return ds, [d or f"band {i + 1}" for i, d in enumerate(ds.descriptions)]

    def band(self, href: str, what: str, name: str | None = None, last: bool = False) -> RasterView:
        """One band as a (rows, cols) view: the one called `name` (case-insensitive), else the
        first (or, with `last`, the last) band."""
        ds, bands = self.open(href, what)
        lower = [b.lower() for b in bands]
        if name is not None and name.lower() in lower:
            index = lower.index(name.lower()) + 1
        else:
            index = len(bands) if last else 1
        return RasterView(ds, [index], squeeze=True)


class LayerWriter:
    """Writes a tile's layers block by block, then as COGs to the store, and remembers their assets.

    Each layer goes to ``<prefix>/<name>.tif``; `specs` maps the names of layers on a catalogue
    spec to the spec's layer id. Assets on a grid other than the tile's record that grid.
    """

    def __init__(
        self, store: ObjectStore, prefix: str, work: Path, grid: TileGrid, specs: Mapping[str, str]
    ) -> None:
        self.store, self.prefix, self.work, self.grid, self.specs = store, prefix, work, grid, specs
        self.assets: dict[str, Asset] = {}
        self.urls: dict[str, str] = {}
        self.kept: dict[str, Path] = {}  # local copies later families read (RAS for HRL)

    def layers(
        self,
        grids: dict[str, TileGrid],
        blocks: Iterable[tuple[Window, dict[str, np.ndarray]]],
        keep: tuple[str, ...] = (),
    ) -> None:
        """Layers on their catalogue specs (codes checked, colour map, mode overviews) from
        (window, {name: block}) pairs; every layer of `grids` gets every block. The layers named
        in `keep` stay on local disk too (in :attr:`kept`)."""
        staged = {
            n: cog.StagedLayer(self.work / f"{n}.tif", codes.layer(self.specs[n]), staging_grid(g))
            for n, g in grids.items()
        }
        try:
            for win, values in blocks:
                for n, layer in staged.items():
                    layer.write(win, values[n])
        except BaseException:
            for layer in staged.values():
                layer.abort()
            raise
        for n, layer in staged.items():
            result = layer.finish()
            result.aux_path.unlink(missing_ok=True)  # intermediates carry no attribute table
            self._put(n, result.path, grids[n], {"landstack:layer": layer.spec.id}, keep=n in keep)

    def plain(self, name: str, count: int, dtype: str, nodata: float, bands: list[str]) -> cog.StagedRaster:
        """A raster without a spec (probabilities, 10 m built-up values) on the tile grid."""
        return cog.StagedRaster(
            self.work / f"{name}.tif", staging_grid(self.grid), count, dtype, nodata, bands
        )

    def put_plain(self, name: str, staged: cog.StagedRaster) -> None:
        """Copy a staged plain raster into its COG and upload it."""
        self._put(name, staged.finish(), self.grid, {})

    def _put(self, name: str, path: Path, grid: TileGrid, fields: dict[str, Any], keep: bool = False) -> None:
        href = self.store.put_file(path, f"{self.prefix}/{name}.tif")
        if keep:
            self.kept[name] = path
        else:
            path.unlink()
        self.urls[name] = href
        self.assets[name] = Asset(
            href=href,
            media_type=COG_MEDIA_TYPE,
            roles=["data"],
            title=name,
            fields=fields,
            file=file_info(href, self.store),
            grid=grid if grid != self.grid else None,
        )
