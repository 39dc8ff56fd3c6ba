"""Cloud-Optimized GeoTIFFs of product layers, with colour map and raster attribute table.

A layer is written block by block into a tiled temporary GeoTIFF (so memory follows the block
size, never the tile), then copied by GDAL's COG driver: 512 px internal tiles, DEFLATE with a
predictor, overviews (mode for classes, average for continuous layers), nodata, band description
and, for classified layers, the embedded colour map. The attribute table goes into a GDAL PAM
`.aux.xml` beside the COG. Outputs reach the object store atomically through `ObjectStore.put_file`.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
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
    dtype = codes.np_dtype(spec)
    counts = None
    if spec.dtype in _RAT_DTYPES:
        counts = np.zeros(65536 if spec.dtype == "uint16" else 256, np.int64)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        staging = Path(tmp) / "staging.tif"
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
            with rasterio.open(staging, "w", **profile) as dst:
                for win, values in data:
                    values = np.asarray(values)
                    codes.check_codes(spec, values)
                    dst.write(values.astype(dtype, copy=False), 1, window=win)
                    if counts is not None:
                        counts += np.bincount(values.ravel(), minlength=counts.size)[: counts.size]
                dst.set_band_description(1, f"{spec.code}: {spec.title}")
                if has_colormap(spec):
                    dst.write_colormap(1, symbology.colormap(spec))
            rasterio.shutil.copy(
                staging,
                path,
                driver="COG",
                BLOCKSIZE=block,
                COMPRESS=compress,
                PREDICTOR="YES",
                OVERVIEW_RESAMPLING=overview_resampling(spec),
                BIGTIFF="IF_SAFER",
            )
        except RasterioError as e:
            path.unlink(missing_ok=True)
            raise DeliveryError(f"cannot write the COG of layer {spec.id} to {path}: {e}") from e
    valid, errors, _ = cog_validate(str(path), quiet=True)
    if not valid:
        path.unlink(missing_ok=True)  # nothing half-right is left behind
        raise DeliveryError(f"{path} is not a valid COG: {errors}; nothing was kept")
    result = CogResult(path, {}, _sha256(path))
    if counts is not None:
        result.counts = {int(v): int(n) for v, n in enumerate(counts) if n}
        write_attribute_table(result, spec, grid)
    return result


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
