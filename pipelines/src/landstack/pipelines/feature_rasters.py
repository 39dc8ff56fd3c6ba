"""Write lazy feature arrays as tiled GeoTIFFs, one block at a time (memory bounded by chunk size)."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import dask.array as da
import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from rasterio.windows import Window

from landstack.pipelines.errors import FeatureError
from landstack.pipelines.ingest import stack_crs
from landstack.pipelines.store import ObjectStore


def grid_of(arr: xr.DataArray | xr.Dataset) -> tuple[rasterio.crs.CRS, Affine]:
    """CRS and pixel-corner transform of an (…, y, x) array with centre coordinates."""
    x, y = arr.x.values, arr.y.values
    if x.size < 2 or y.size < 2:
        raise FeatureError("the array needs at least 2x2 pixels to derive its grid")
    dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
    return stack_crs(arr), Affine(dx, 0.0, float(x[0]) - dx / 2, 0.0, dy, float(y[0]) - dy / 2)


def write_geotiff(arr: xr.DataArray, store: ObjectStore, key: str, nodata: float | None = None) -> str:
    """Write a (band, y, x) or (y, x) lazy array block by block; returns the href."""
    data = arr.data if arr.ndim == 3 else arr.data[None]
    if not isinstance(data, da.Array):
        data = da.from_array(data, chunks=(-1, 512, 512))
    data = data.rechunk({0: -1})
    crs, transform = grid_of(arr)
    n, h, w = data.shape
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.tif"
        profile = {
            "driver": "GTiff",
            "width": w,
            "height": h,
            "count": n,
            "dtype": np.dtype(data.dtype).name,
            "crs": crs,
            "transform": transform,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "deflate",
            "interleave": "band",
            "BIGTIFF": "IF_SAFER",
        }
        if nodata is not None:
            profile["nodata"] = nodata
        with rasterio.open(path, "w", **profile) as dst:
            if "feature" in arr.dims and arr.ndim == 3:
                for i, name in enumerate(arr["feature"].values.tolist()):
                    dst.set_band_description(i + 1, str(name))
            y0 = 0
            for iy, ch in enumerate(data.chunks[1]):
                x0 = 0
                for ix, cw in enumerate(data.chunks[2]):
                    block = np.asarray(data.blocks[0, iy, ix].compute())
                    dst.write(block, window=Window(x0, y0, cw, ch))
                    x0 += cw
                y0 += ch
        return store.put_file(path, key)


def _profile(
    arr: xr.DataArray | xr.Dataset, count: int, dtype: str, nodata: float | None
) -> dict[str, object]:
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
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    if nodata is not None:
        prof["nodata"] = nodata
    return prof


def write_timeseries(ds: xr.Dataset, store: ObjectStore, prefix: str) -> list[str]:
    """Write `<feature>.tif` (one band per step) and `data_score.tif`, computing each block once."""
    import dask

    feats = ds["features"].data
    score = ds["data_score"].data
    if not isinstance(feats, da.Array):
        feats = da.from_array(feats, chunks=(-1, -1, 512, 512))
    feats = feats.rechunk({0: -1, 1: -1})
    score = da.asarray(score).rechunk(feats.chunks[2:])
    names = [str(n) for n in ds["feature"].values.tolist()]
    steps = [str(s)[:10] for s in ds["step"].values]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        paths = {n: Path(tmp) / f"{n}.tif" for n in [*names, "data_score"]}
        out = {
            n: stack.enter_context(
                rasterio.open(paths[n], "w", **_profile(ds, len(steps), "float32", float("nan")))
            )
            for n in names
        }
        out["data_score"] = stack.enter_context(
            rasterio.open(paths["data_score"], "w", **_profile(ds, 1, "uint16", None))
        )
        for dst in out.values():
            if dst.count == len(steps):
                for i, s in enumerate(steps):
                    dst.set_band_description(i + 1, s)
        y0 = 0
        for iy, ch in enumerate(feats.chunks[2]):
            x0 = 0
            for ix, cw in enumerate(feats.chunks[3]):
                fb, sb = dask.compute(feats.blocks[0, 0, iy, ix], score.blocks[iy, ix])
                win = Window(x0, y0, cw, ch)
                for i, n in enumerate(names):
                    out[n].write(np.asarray(fb[i]), window=win)
                out["data_score"].write(np.asarray(sb)[None], window=win)
                x0 += cw
            y0 += ch
        stack.close()
        return [store.put_file(paths[n], f"{prefix}/{n}.tif") for n in [*names, "data_score"]]
