"""Write lazy feature arrays as Cloud-Optimized GeoTIFFs, one block at a time.

Each dask block is computed once and written into a tiled scratch GeoTIFF (memory follows the
chunk size, not the tile size); GDAL's COG driver then streams the scratch file into a COG
(256 px tiles, deflate, overviews) that is uploaded atomically through the object store.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import rasterio
import rasterio.shutil
import xarray as xr
from affine import Affine
from rasterio.windows import Window

from landstack.catalog.grid import stack_crs
from landstack.pipelines.errors import FeatureError
from landstack.storage import ObjectStore

COG_BLOCK = 256


def grid_of(arr: xr.DataArray | xr.Dataset) -> tuple[rasterio.crs.CRS, Affine]:
    """CRS and pixel-corner transform of an (…, y, x) array with centre coordinates."""
    x, y = arr.x.values, arr.y.values
    if x.size < 2 or y.size < 2:
        raise FeatureError("the array needs at least 2x2 pixels to derive its grid")
    dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
    return stack_crs(arr), Affine(dx, 0.0, float(x[0]) - dx / 2, 0.0, dy, float(y[0]) - dy / 2)


def _profile(
    arr: xr.DataArray | xr.Dataset, count: int, dtype: str, nodata: float | None
) -> dict[str, object]:
    """Profile of the tiled scratch GeoTIFF that blocks are written into."""
    crs, transform = grid_of(arr)
    prof: dict[str, object] = {
        "driver": "GTiff",
        "width": arr.sizes["x"],
        "height": arr.sizes["y"],
        "count": count,
        "dtype": dtype,
        "crs": crs,
        "transform": transform,
        "tiled": True,
        "blockxsize": COG_BLOCK,
        "blockysize": COG_BLOCK,
        "compress": "deflate",
        "interleave": "band",
        "BIGTIFF": "IF_SAFER",
    }
    if nodata is not None:
        prof["nodata"] = nodata
    return prof


def _to_cog(src: Path, dst: Path, resampling: str) -> None:
    """Stream a tiled GeoTIFF into a COG with overviews (GDAL reads it block by block)."""
    with rasterio.open(src) as ds:
        predictor = "3" if np.dtype(ds.dtypes[0]).kind == "f" else "2"
    rasterio.shutil.copy(
        src,
        dst,
        driver="COG",
        COMPRESS="DEFLATE",
        PREDICTOR=predictor,
        BLOCKSIZE=str(COG_BLOCK),
        OVERVIEWS="AUTO",
        OVERVIEW_RESAMPLING=resampling,
        RESAMPLING=resampling,
        BIGTIFF="IF_SAFER",
        NUM_THREADS="ALL_CPUS",  # compression of the tiles only; memory stays per tile
    )


def _describe(dst: rasterio.io.DatasetWriter, names: Sequence[str]) -> None:
    for i, name in enumerate(names):
        dst.set_band_description(i + 1, str(name))


def write_geotiff(arr: xr.DataArray, store: ObjectStore, key: str, nodata: float | None = None) -> str:
    """Write a (band, y, x) or (y, x) lazy array as a COG, block by block; returns the href."""
    data = arr.data if arr.ndim == 3 else arr.data[None]
    if not isinstance(data, da.Array):
        data = da.from_array(data, chunks=(-1, 512, 512))
    data = data.rechunk({0: -1})
    n = data.shape[0]
    dtype = np.dtype(data.dtype).name
    with tempfile.TemporaryDirectory() as tmp:
        scratch, cog = Path(tmp) / "scratch.tif", Path(tmp) / "out.tif"
        with rasterio.open(scratch, "w", **_profile(arr, n, dtype, nodata)) as dst:
            if "feature" in arr.dims and arr.ndim == 3:
                _describe(dst, arr["feature"].values.tolist())
            for win, (iy, ix) in _windows(data.chunks[1], data.chunks[2]):
                dst.write(np.asarray(data.blocks[0, iy, ix].compute()), window=win)
        _to_cog(scratch, cog, "average" if np.dtype(dtype).kind == "f" else "nearest")
        return store.put_file(cog, key)


def _windows(rows: Sequence[int], cols: Sequence[int]) -> list[tuple[Window, tuple[int, int]]]:
    """The raster window and block index of every (row chunk, column chunk)."""
    out = []
    y0 = 0
    for iy, ch in enumerate(rows):
        x0 = 0
        for ix, cw in enumerate(cols):
            out.append((Window(x0, y0, cw, ch), (iy, ix)))
            x0 += cw
        y0 += ch
    return out


def write_timeseries(ds: xr.Dataset, store: ObjectStore, prefix: str) -> list[str]:
    """Write `<feature>.tif` (one band per step) and `data_score.tif` as COGs; returns the hrefs.

    Every block of the feature computation runs once: the features and the data score of a block
    come out of one dask computation and go to all rasters together.
    """
    feats = ds["features"].data
    score = ds["data_score"].data
    if not isinstance(feats, da.Array):
        feats = da.from_array(feats, chunks=(-1, -1, 512, 512))
    feats = feats.rechunk({0: -1, 1: -1})
    score = da.asarray(score).rechunk(feats.chunks[2:])
    names = [str(n) for n in ds["feature"].values.tolist()]
    steps = [str(s)[:10] for s in ds["step"].values]
    with tempfile.TemporaryDirectory() as tmp:
        scratch = {n: Path(tmp) / f"{n}.scratch.tif" for n in [*names, "data_score"]}
        with contextlib.ExitStack() as stack:
            out = {
                n: stack.enter_context(
                    rasterio.open(scratch[n], "w", **_profile(ds, len(steps), "float32", float("nan")))
                )
                for n in names
            }
            out["data_score"] = stack.enter_context(
                rasterio.open(scratch["data_score"], "w", **_profile(ds, 1, "uint16", None))
            )
            for n in names:
                _describe(out[n], steps)
            for win, (iy, ix) in _windows(feats.chunks[2], feats.chunks[3]):
                fb, sb = dask.compute(feats.blocks[0, 0, iy, ix], score.blocks[iy, ix])
                for i, n in enumerate(names):
                    out[n].write(np.asarray(fb[i]), window=win)
                out["data_score"].write(np.asarray(sb)[None], window=win)
        # Every COG is complete before the first upload, so a failure leaves no partial set behind.
        cogs = {n: Path(tmp) / f"{n}.tif" for n in scratch}
        for n, src in scratch.items():
            _to_cog(src, cogs[n], "nearest" if n == "data_score" else "average")
            src.unlink()
        return [store.put_file(path, f"{prefix}/{n}.tif") for n, path in cogs.items()]
