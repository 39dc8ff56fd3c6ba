"""Cloud-Optimized GeoTIFFs of product layers, with colour map and raster attribute table.

A layer is written block by block into a tiled staging GeoTIFF (so memory follows the block
size, never the tile; the attribute table's counts are accumulated per block), then copied by
GDAL's COG driver: 512 px internal tiles, DEFLATE with a predictor, overviews (mode for classes,
average for continuous layers), nodata, band description and, for classified layers, the embedded
colour map. The attribute table goes into a GDAL PAM `.aux.xml` beside the COG. Outputs reach the
object store atomically through `ObjectStore.put_file`.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

from landstack.catalog import symbology
from landstack.catalog.spec import LayerSpec
from landstack.pipelines.products import codes
from landstack.pipelines.products.errors import DeliveryError, ShapeError
from landstack.pipelines.products.raster import Grid, windows
from landstack.storage import ObjectStore

BLOCK = 512
_RAT_DTYPES = {"uint8", "uint16"}  # per-value tables stay small; wider layers get no table


@dataclass
class CogResult:
    """A written COG: its path, per-value pixel counts and sha256."""

    path: Path
    counts: dict[int, int] = field(default_factory=dict)
    sha256: str = ""

    @property
    def aux_path(self) -> Path:
        return self.path.with_name(self.path.name + ".aux.xml")

    @property
    def checksum(self) -> str:
        """The file's sha2-256 multihash (what STAC's file:checksum holds)."""
        return "1220" + self.sha256


def is_classified(spec: LayerSpec) -> bool:
    """Thematic and mask layers: mode overviews, embedded colour map, a row per class."""
    return spec.kind in ("thematic", "mask")


def overview_resampling(spec: LayerSpec) -> str:
    """GDAL overview resampling: mode for classes, average for continuous values."""
    return "MODE" if is_classified(spec) else "AVERAGE"


def has_colormap(spec: LayerSpec) -> bool:
    """Classified layers and 8-bit continuous layers with a ramp carry a palette."""
    return is_classified(spec) or (spec.dtype == "uint8" and spec.ramp is not None)


def _blocks_of(array: np.ndarray, block: int) -> Iterable[tuple[Window, np.ndarray]]:
    for win in windows(array.shape, block):
        yield win, array[win.row_off : win.row_off + win.height, win.col_off : win.col_off + win.width]


class StagedLayer:
    """A layer written block by block into a tiled staging GeoTIFF beside `path`; `finish` makes the COG.

    Every block is checked against the spec's codes (a value the spec does not declare is an
    error) and counted for the attribute table, so no whole-layer array is ever needed.
    """

    def __init__(self, path: str | Path, spec: LayerSpec, grid: Grid, block: int = BLOCK) -> None:
        self.path, self.spec, self.grid, self.block = Path(path), spec, grid, block
        self.staging = self.path.with_name(f".{self.path.name}.staging.tif")
        self._dtype = codes.np_dtype(spec)
        self._counts: np.ndarray | None = None
        if spec.dtype in _RAT_DTYPES:
            self._counts = np.zeros(65536 if spec.dtype == "uint16" else 256, np.int64)
        profile = {
            "driver": "GTiff",
            "width": grid.shape[1],
            "height": grid.shape[0],
            "count": 1,
            "dtype": spec.dtype,
            "crs": grid.crs,
            "transform": grid.transform,
            "nodata": spec.nodata,
            "tiled": True,
            "blockxsize": block,
            "blockysize": block,
            "compress": "DEFLATE",  # staging only: fast, the COG driver recompresses
            "zlevel": 1,
            "BIGTIFF": "IF_SAFER",
        }
        try:
            self._dst: Any = rasterio.open(self.staging, "w", **profile)
            # before any block: libtiff cannot change the photometric tag once data is written
            self._dst.set_band_description(1, f"{spec.code}: {spec.title}")
            if has_colormap(spec):
                self._dst.write_colormap(1, symbology.colormap(spec))
        except RasterioError as e:
            raise DeliveryError(
                f"cannot create the staging file of layer {spec.id} at {self.staging}: {e}"
            ) from e

    def write(self, win: Window, values: np.ndarray) -> None:
        """Write one block (checked against the spec's codes and counted)."""
        values = np.asarray(values)
        codes.check_codes(self.spec, values)
        try:
            self._dst.write(values.astype(self._dtype, copy=False), 1, window=win)
        except RasterioError as e:
            self.abort()
            raise DeliveryError(f"cannot write a block of layer {self.spec.id} to {self.staging}: {e}") from e
        if self._counts is not None:
            self._counts += np.bincount(values.ravel(), minlength=self._counts.size)[: self._counts.size]

    def abort(self) -> None:
        """Close and remove the staging file (nothing half-written is left behind)."""
        if not self._dst.closed:
            self._dst.close()
        self.staging.unlink(missing_ok=True)

    def finish(self, compress: str = "DEFLATE") -> CogResult:
        """Copy the staging file into the COG (+ `.aux.xml` table); raises DeliveryError if invalid."""
        spec = self.spec
        try:
            self._dst.close()
            _build_overviews(self.staging, self.grid.shape, self.block, overview_resampling(spec))
            rasterio.shutil.copy(
                self.staging,
                self.path,
                driver="COG",
                BLOCKSIZE=self.block,
                COMPRESS=compress,
                PREDICTOR="YES",
                OVERVIEWS="FORCE_USE_EXISTING",
                BIGTIFF="IF_SAFER",
            )
        except RasterioError as e:
            self.path.unlink(missing_ok=True)
            raise DeliveryError(f"cannot write the COG of layer {spec.id} to {self.path}: {e}") from e
        finally:
            self.abort()
        valid, errors, _ = cog_validate(str(self.path), quiet=True)
        if not valid:
            self.path.unlink(missing_ok=True)  # nothing half-right is left behind
            raise DeliveryError(f"{self.path} is not a valid COG: {errors}; nothing was kept")
        result = CogResult(self.path, {}, _sha256(self.path))
        if self._counts is not None:
            result.counts = {int(v): int(n) for v, n in enumerate(self._counts) if n}
            write_attribute_table(result, spec, self.grid)
        return result


def write_cog(
    path: str | Path,
    spec: LayerSpec,
    grid: Grid,
    data: np.ndarray | Iterable[tuple[Window, np.ndarray]],
    *,
    compress: str = "DEFLATE",
    block: int = BLOCK,
) -> CogResult:
    """Write a layer as a COG plus `.aux.xml` attribute table; `data` is an array or (window, block) pairs.

    Every block is checked against the spec's codes (a value the spec does not declare is an
    error) and counted for the attribute table. Raises DeliveryError when GDAL fails or the result
    is not a valid COG.
    """
    path = Path(path)
    if isinstance(data, np.ndarray):
        if data.shape != grid.shape:
            raise ShapeError(f"layer {spec.id}: array {data.shape} does not match the grid {grid.shape}")
        data = _blocks_of(data, block)
    staged = StagedLayer(path, spec, grid, block)
    try:
        for win, values in data:
            staged.write(win, values)
    except BaseException:
        staged.abort()
        raise
    return staged.finish(compress)


class StagedRaster:
    """A raster without a spec (probabilities, 10 m built-up values) written block by block.

    `close` ends the writing and leaves the staging file readable (later passes read it back
    window by window); `finish` copies it into a DEFLATE COG with a predictor.
    """

    def __init__(
        self,
        path: str | Path,
        grid: Grid,
        count: int,
        dtype: str,
        nodata: float,
        bands: list[str],
        block: int = 256,
    ) -> None:
        self.path, self.grid, self.block = Path(path), grid, block
        self.staging = self.path.with_name(f".{self.path.name}.staging.tif")
        profile = {
            "driver": "GTiff",
            "width": grid.shape[1],
            "height": grid.shape[0],
            "count": count,
            "dtype": dtype,
            "crs": grid.crs,
            "transform": grid.transform,
            "nodata": nodata,
            "tiled": True,
            "blockxsize": block,
            "blockysize": block,
            "compress": "DEFLATE",
            "zlevel": 1,
            "interleave": "band",  # overviews of many bands stay fast with a small GDAL cache
            "BIGTIFF": "IF_SAFER",
        }
        try:
            self._dst: Any = rasterio.open(self.staging, "w", **profile)
            for i, b in enumerate(bands, start=1):
                self._dst.set_band_description(i, b)
        except RasterioError as e:
            raise DeliveryError(f"cannot create the staging raster {self.staging}: {e}") from e

    def write(self, win: Window, values: np.ndarray) -> None:
        """Write one block (bands, rows, cols)."""
        try:
            self._dst.write(values, window=win)
        except RasterioError as e:
            raise DeliveryError(f"cannot write a block to {self.staging}: {e}") from e

    def close(self) -> Path:
        """End the writing; the staging file stays readable until `finish`."""
        if not self._dst.closed:
            self._dst.close()
        return self.staging

    def finish(self) -> Path:
        """Copy the staging file into the COG at `path` and remove it."""
        self.close()
        try:
            # CUBIC: what the COG driver picks for rasters without a palette
            _build_overviews(self.staging, self.grid.shape, self.block, "CUBIC")
            rasterio.shutil.copy(
                self.staging,
                self.path,
                driver="COG",
                COMPRESS="DEFLATE",
                PREDICTOR="YES",
                BLOCKSIZE=self.block,
                OVERVIEWS="FORCE_USE_EXISTING",
                BIGTIFF="IF_SAFER",
            )
        except RasterioError as e:
            self.path.unlink(missing_ok=True)
            raise DeliveryError(f"cannot write the COG {self.path}: {e}") from e
        finally:
            self.staging.unlink(missing_ok=True)
        return self.path


def overview_factors(shape: tuple[int, int], block: int) -> list[int]:
    """The overview levels GDAL's COG driver makes: halve until the image fits one block."""
    h, w = shape
    factors: list[int] = []
    while w > block or h > block:
        w, h = -(-w // 2), -(-h // 2)
        factors.append(2 ** (len(factors) + 1))
    return factors


def _build_overviews(staging: Path, shape: tuple[int, int], block: int, resampling: str) -> None:
    """Overviews inside the staging file, so the COG driver only copies them.

    Left to the COG driver, overview generation re-reads the source over and over once GDAL's
    block cache is bounded (10x slower at 2000 x 2000 px); building them here does not.
    """
    factors = overview_factors(shape, block)
    if factors:
        with rasterio.open(staging, "r+") as ds:
            ds.build_overviews(factors, Resampling[resampling.lower()])


def write_attribute_table(result: CogResult, spec: LayerSpec, grid: Grid) -> Path:
    """The GDAL PAM `.aux.xml` with the layer's raster attribute table beside the COG."""
    area = grid.pixel_area if grid.crs.is_projected else spec.grid.resolution_m**2
    rows = symbology.attribute_table(spec, result.counts, area)
    result.aux_path.write_text(symbology.aux_xml(spec, rows))
    return result.aux_path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def put_cog(store: ObjectStore, key: str, result: CogResult) -> dict[str, str]:
    """Upload a COG and its `.aux.xml` atomically; returns {"data": href, "rat": href}."""
    hrefs = {}
    if result.aux_path.exists():
        hrefs["rat"] = store.put_file(result.aux_path, key + ".aux.xml")
    hrefs["data"] = store.put_file(result.path, key)
    return hrefs


def deliver(
    store: ObjectStore,
    key: str,
    spec: LayerSpec,
    grid: Grid,
    data: np.ndarray | Iterable[tuple[Window, np.ndarray]],
    *,
    compress: str = "DEFLATE",
) -> tuple[CogResult, dict[str, str]]:
    """Write a layer's COG and attribute table in a temporary folder and upload both to `key`."""
    with tempfile.TemporaryDirectory() as tmp:
        result = write_cog(Path(tmp) / Path(key).name, spec, grid, data, compress=compress)
        hrefs = put_cog(store, key, result)
        return CogResult(Path(key), result.counts, result.sha256), hrefs
