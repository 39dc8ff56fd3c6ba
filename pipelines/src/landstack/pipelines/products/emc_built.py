"""EMC-BUILT style built-up surface: S, NRES and GREENNESS at 10 m, aggregated and reprojected.

Ensemble averaging of the U-Net members, NDWI commission correction, rescaling to m² per 10 m cell,
aggregation by area sums (10 m -> 100 m -> 1000 m, totals exact), greenness as the median NDVI
within 300 m of built-up, and reprojection to World Mollweide / WGS84 with sum resampling so the
built-up total is preserved.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from affine import Affine
from rasterio import warp
from rasterio.crs import CRS
from rasterio.transform import array_bounds
from rasterio.windows import Window
from scipy import ndimage

from landstack.catalog.spec import LayerSpec
from landstack.pipelines.products import codes
from landstack.pipelines.products.errors import ShapeError
from landstack.pipelines.products.raster import Grid, windows
from landstack.pipelines.products.windowed import halo_slices

NDWI_WATER = 0.2  # NDWI above this is water-like: built-up predicted there is a commission error
GREENNESS_RADIUS_M = 300.0
CELL_M = 10.0
WARP_THREADS = 2  # GDAL warps with this many threads (sum resampling is the costly step)


def ensemble_mean(members: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Mean of the ensemble members' predictions (each H, W; NaN = no data) as float32."""
    stack = np.asarray(members, np.float32)
    if stack.ndim != 3 or stack.shape[0] == 0:
        raise ShapeError(f"ensemble members must stack to (members, rows, cols), got {stack.shape}")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(stack)
        n = valid.sum(axis=0)
        total = np.where(valid, stack, 0.0).sum(axis=0)
        return np.where(n > 0, total / np.maximum(n, 1), np.nan).astype(np.float32)


def ndwi_correction(fraction: np.ndarray, ndwi: np.ndarray, threshold: float = NDWI_WATER) -> np.ndarray:
    """Set the built-up fraction to 0 where NDWI marks the pixel as water-like."""
    if fraction.shape != ndwi.shape:
        raise ShapeError(f"built-up {fraction.shape} and NDWI {ndwi.shape} are on different grids")
    return np.where(np.nan_to_num(ndwi, nan=-1.0) > threshold, np.float32(0), fraction).astype(np.float32)


def to_m2(fraction: np.ndarray, cell_m: float = CELL_M) -> np.ndarray:
    """Built-up fraction (0-1) -> m² per cell (0-100 for 10 m), float32, NaN kept as no data."""
    return (np.clip(fraction, 0.0, 1.0) * (cell_m * cell_m)).astype(np.float32)


def encode(values: np.ndarray, spec: LayerSpec) -> np.ndarray:
    """Round continuous values into a layer's value range and dtype; NaN -> the layer's nodata."""
    lo, hi = spec.value_range or (0, np.iinfo(spec.dtype).max - 1)
    out = np.clip(np.rint(np.nan_to_num(values, nan=lo)), lo, hi).astype(codes.np_dtype(spec))
    out[~np.isfinite(values)] = spec.nodata
    return out


def aggregate_sum(values: np.ndarray, factor: int, nodata: float | None = None) -> np.ndarray:
    """Sum blocks of `factor` x `factor` cells (area sums); int64 for integers so totals are exact.

    No-data cells (`nodata`, or NaN for floats) count as 0; a block that is entirely no data is
    no data (NaN for floats, `nodata` for integers). The grid must divide by `factor`.
    """
    h, w = values.shape
    if h % factor or w % factor:
        raise ShapeError(f"a {h} x {w} grid does not divide into {factor} x {factor} blocks; crop or pad it")
    if np.issubdtype(values.dtype, np.floating):
        missing = np.isnan(values) if nodata is None else (np.isnan(values) | (values == nodata))
        data = np.where(missing, 0.0, values).astype(np.float64)
    else:
        missing = values == nodata if nodata is not None else np.zeros(values.shape, bool)
        data = np.where(missing, 0, values).astype(np.int64)
    blocks = data.reshape(h // factor, factor, w // factor, factor).sum(axis=(1, 3))
    empty = missing.reshape(h // factor, factor, w // factor, factor).all(axis=(1, 3))
    if np.issubdtype(blocks.dtype, np.floating):
        blocks[empty] = np.nan
    elif nodata is not None:
        blocks[empty] = nodata
    return blocks


def aggregate_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """Mean of the valid (non-NaN) cells of each block (for greenness); NaN where none is valid."""
    h, w = values.shape
    if h % factor or w % factor:
        raise ShapeError(f"a {h} x {w} grid does not divide into {factor} x {factor} blocks; crop or pad it")
    v = values.astype(np.float64).reshape(h // factor, factor, w // factor, factor)
    ok = np.isfinite(v)
    n = ok.sum(axis=(1, 3))
    total = np.where(ok, v, 0.0).sum(axis=(1, 3))
    return np.where(n > 0, total / np.maximum(n, 1), np.nan).astype(np.float32)


def greenness(
    ndvi: np.ndarray,
    built: np.ndarray,
    cell_m: float = CELL_M,
    radius_m: float = GREENNESS_RADIUS_M,
    block: int = 10,
) -> np.ndarray:
    """GREENNESS (float32 0-100, NaN = no data or outside the built-up domain).

    The domain is every pixel within `radius_m` of built-up (`built` True). Each domain pixel gets
    the median NDVI (x 100, clipped to 0-100) of the domain pixels within `radius_m` of its
    `block` x `block` cell; computing the median per cell rather than per pixel keeps the cost at
    (window / block)² of a per-pixel median filter.
    """
    if ndvi.shape != built.shape:
        raise ShapeError(f"NDVI {ndvi.shape} and built-up {built.shape} are on different grids")
    h, w = ndvi.shape
    return greenness_window(ndvi, built, (0, 0), (h, w), Window(0, 0, w, h), cell_m, radius_m, block)


def greenness_halo(cell_m: float = CELL_M, radius_m: float = GREENNESS_RADIUS_M) -> int:
    """Pixels of halo a block needs for :func:`greenness_window` (the domain of the domain)."""
    return 2 * round(radius_m / cell_m)


def greenness_window(
    ndvi: np.ndarray,
    built: np.ndarray,
    origin: tuple[int, int],
    tile_shape: tuple[int, int],
    inner: Window,
    cell_m: float = CELL_M,
    radius_m: float = GREENNESS_RADIUS_M,
    block: int = 10,
) -> np.ndarray:
    """GREENNESS of the window `inner` of a tile, equal to :func:`greenness` of the whole tile there.

    `ndvi` and `built` cover the part of the tile starting at `origin` (row, col) that holds
    `inner` plus :func:`greenness_halo` pixels (clipped to the tile). `inner` starts on a multiple
    of `block` and ends on one or on the tile's edge, so its cells are the whole tile's cells.
    """
    if ndvi.shape != built.shape:
        raise ShapeError(f"NDVI {ndvi.shape} and built-up {built.shape} are on different grids")
    th, tw = tile_shape
    r0, c0 = int(inner.row_off), int(inner.col_off)
    r1, c1 = r0 + int(inner.height), c0 + int(inner.width)
    if r0 % block or c0 % block or (r1 % block and r1 != th) or (c1 % block and c1 != tw):
        raise ShapeError(f"window {inner} does not fall on the {block}-pixel greenness cells; use multiples")
    r = round(radius_m / cell_m)
    # the inner window inside the given arrays
    ir, ic = slice(r0 - origin[0], r1 - origin[0]), slice(c0 - origin[1], c1 - origin[1])
    built = np.asarray(built, bool)
    if not built.any():
        return np.full((r1 - r0, c1 - c0), np.nan, np.float32)
    domain = ndimage.distance_transform_edt(~built) * cell_m <= radius_m
    vals = np.where(domain & np.isfinite(ndvi), ndvi, np.nan).astype(np.float32)
    hb, wb = -(-(r1 - r0) // block), -(-(c1 - c0) // block)
    # cells' windows in tile rows/cols: [r0 - r, r0 + hb * block + r), NaN beyond the tile's edge
    top, left = r0 - r, c0 - r
    pad = np.full((hb * block + 2 * r, wb * block + 2 * r), np.nan, np.float32)
    tr0, tr1 = max(0, top), min(th, top + pad.shape[0])
    tc0, tc1 = max(0, left), min(tw, left + pad.shape[1])
    if (
        tr0 < origin[0]
        or tc0 < origin[1]
        or tr1 > origin[0] + vals.shape[0]
        or tc1 > origin[1] + vals.shape[1]
    ):
        raise ShapeError(
            f"the arrays at {origin} of shape {vals.shape} lack the halo the window {inner} needs"
        )
    pad[tr0 - top : tr1 - top, tc0 - left : tc1 - left] = vals[
        tr0 - origin[0] : tr1 - origin[0], tc0 - origin[1] : tc1 - origin[1]
    ]
    win = block + 2 * r
    views = np.lib.stride_tricks.sliding_window_view(pad, (win, win))[::block, ::block]
    med = np.full((hb, wb), np.nan, np.float32)
    for i in range(hb):  # one row of cells at a time bounds the temporary to wb * win² values
        row = views[i].reshape(wb, -1)
        has = np.isfinite(row).any(axis=1)
        if has.any():
            med[i, has] = np.nanmedian(row[has], axis=1)
    out = np.repeat(np.repeat(med, block, axis=0), block, axis=1)[: r1 - r0, : c1 - c0]
    out = np.clip(out * 100.0, 0.0, 100.0)
    out[~domain[ir, ic] | ~np.isfinite(ndvi[ir, ic])] = np.nan
    return out.astype(np.float32)


def target_grid(
    src_crs: CRS | str,
    src_transform: Affine,
    src_shape: tuple[int, int],
    dst_crs: CRS | str,
    resolution: float,
    snap: float | None = None,
) -> Grid:
    """The grid covering a source tile in `dst_crs` at `resolution` (CRS units).

    Its edges are snapped outwards to multiples of `snap` (default: the resolution), so a 10 m grid
    snapped to 1000 m aggregates into whole 100 m and 1000 m cells.
    """
    dst = CRS.from_user_input(dst_crs)
    step = snap or resolution
    bounds = array_bounds(*src_shape, src_transform)
    src = CRS.from_user_input(src_crs)
    left, bottom, right, top = warp.transform_bounds(src, dst, *bounds, densify_pts=21)
    left, bottom = np.floor(left / step) * step, np.floor(bottom / step) * step
    right, top = np.ceil(right / step) * step, np.ceil(top / step) * step
    width, height = round((right - left) / resolution), round((top - bottom) / resolution)
    return Grid(dst, Affine(resolution, 0, left, 0, -resolution, top), (height, width))


def layer_resolution(spec: LayerSpec) -> float:
    """A layer's resolution in its CRS units (degrees for arc-second grids)."""
    return spec.grid.resolution / 3600.0 if spec.grid.resolution_unit == "arcsec" else spec.grid.resolution


def reproject_sum(values: np.ndarray, src_crs: CRS | str, src_transform: Affine, dst: Grid) -> np.ndarray:
    """Reproject per-cell amounts (m²) onto `dst` preserving their total (GDAL's sum resampling).

    NaN is no data; the result is float64 with NaN where no source cell contributes.
    """
    src = np.where(np.isfinite(values), values, -1.0).astype(np.float64)
    out = np.full(dst.shape, -1.0, np.float64)
    warp.reproject(
        src,
        out,
        src_transform=src_transform,
        src_crs=CRS.from_user_input(src_crs),
        src_nodata=-1.0,
        dst_transform=dst.transform,
        dst_crs=dst.crs,
        dst_nodata=-1.0,
        resampling=warp.Resampling.sum,
        num_threads=WARP_THREADS,
    )
    out[out < 0] = np.nan
    return out


def reproject_mean(values: np.ndarray, src_crs: CRS | str, src_transform: Affine, dst: Grid) -> np.ndarray:
    """Reproject an intensive quantity (greenness %) by averaging; NaN is no data."""
    src = np.where(np.isfinite(values), values, -1.0).astype(np.float32)
    out = np.full(dst.shape, -1.0, np.float32)
    warp.reproject(
        src,
        out,
        src_transform=src_transform,
        src_crs=CRS.from_user_input(src_crs),
        src_nodata=-1.0,
        dst_transform=dst.transform,
        dst_crs=dst.crs,
        dst_nodata=-1.0,
        resampling=warp.Resampling.average,
        num_threads=WARP_THREADS,
    )
    out[out < 0] = np.nan
    return out


def emc_layers_10m(
    s_members: Sequence[np.ndarray],
    nres_members: Sequence[np.ndarray],
    ndwi: np.ndarray,
    ndvi: np.ndarray,
    ndwi_threshold: float = NDWI_WATER,
) -> dict[str, np.ndarray]:
    """S, NRES (m² per 10 m cell, float32) and GREENNESS (0-100) on the source 10 m grid.

    Members predict built-up fractions 0-1. NRES never exceeds S.
    """
    s = to_m2(ndwi_correction(ensemble_mean(s_members), ndwi, ndwi_threshold))
    nres = to_m2(ndwi_correction(ensemble_mean(nres_members), ndwi, ndwi_threshold))
    nres = np.fmin(nres, s)
    green = greenness(ndvi, np.nan_to_num(s) > 0)
    return {"s": s, "nres": nres, "greenness": green}


def emc_blocks(
    s_members: Sequence[Any],
    nres_members: Sequence[Any],
    ndwi: Any,
    ndvi: Any,
    *,
    block: int = 1000,
    ndwi_threshold: float = NDWI_WATER,
) -> Iterator[tuple[Window, dict[str, np.ndarray]]]:
    """(window, {"s", "nres", "greenness"}) of every block of a tile: :func:`emc_layers_10m` block-wise.

    Inputs are (H, W) sliceables (arrays or :class:`windowed.RasterView`); `block` is a multiple
    of 10 (the greenness cells; multiples of 100 keep blocks on whole 100 m / 1 km cells). Each
    block reads S, NDWI and NDVI with the greenness halo, so the result equals the whole tile's.
    """
    if block % 10:
        raise ShapeError(f"EMC-BUILT blocks must be multiples of 10 pixels (greenness cells), got {block}")
    shape = (int(ndvi.shape[0]), int(ndvi.shape[1]))
    halo = greenness_halo()
    for win in windows(shape, block):
        (hr, hc), (ir, ic) = halo_slices(win, halo, shape)
        rows, cols = slice(win.row_off, win.row_off + win.height), slice(win.col_off, win.col_off + win.width)
        ndwi_h = np.asarray(ndwi[hr, hc])
        s_h = to_m2(
            ndwi_correction(ensemble_mean([np.asarray(m[hr, hc]) for m in s_members]), ndwi_h, ndwi_threshold)
        )
        s = s_h[ir, ic]
        nres = to_m2(
            ndwi_correction(
                ensemble_mean([np.asarray(m[rows, cols]) for m in nres_members]),
                ndwi_h[ir, ic],
                ndwi_threshold,
            )
        )
        nres = np.fmin(nres, s)
        green = greenness_window(
            np.asarray(ndvi[hr, hc]), np.nan_to_num(s_h) > 0, (hr.start, hc.start), shape, win
        )
        yield win, {"s": s, "nres": nres, "greenness": green}


def emc_products(
    layers_10m: dict[str, np.ndarray], src_crs: CRS | str, src_transform: Affine
) -> dict[str, tuple[np.ndarray, Grid]]:
    """Every EMC-BUILT layer (collection id -> encoded array and grid) from whole 10 m layers.

    The whole-array reference of :func:`emc_blocks.stage_products` (which the assemble step uses,
    holding one block at a time); kept for comparisons and small areas.

    S and NRES go onto a World Mollweide 10 m grid snapped to 1000 m by sum resampling, then are
    aggregated 10 m -> 100 m -> 1000 m by area sums; WGS84 3" is reprojected from the source with
    sum resampling onto a grid snapped to 30", and 30" aggregated from it. Greenness is averaged
    the same ways. Each layer is then
    encoded into its spec's value range and dtype.
    """
    out: dict[str, tuple[np.ndarray, Grid]] = {}
    shape = layers_10m["s"].shape
    moll = codes.layer("emc-built-s-10m").grid
    base = target_grid(src_crs, src_transform, shape, moll.crs, moll.resolution, snap=1000.0)
    for product in ("s", "nres", "greenness"):
        mean = product == "greenness"
        move = reproject_mean if mean else reproject_sum
        merge = aggregate_mean if mean else aggregate_sum
        fine = move(layers_10m[product], src_crs, src_transform, base)
        levels = {"10m": (fine, base)}
        for suffix, factor in (("100m", 10), ("1km", 10)):
            coarse, grid = levels["10m" if suffix == "100m" else "100m"]
            res = grid.transform.a * factor
            levels[suffix] = (
                merge(coarse, factor),
                Grid(
                    grid.crs,
                    Affine(res, 0, grid.transform.c, 0, -res, grid.transform.f),
                    (grid.shape[0] // factor, grid.shape[1] // factor),
                ),
            )
        # WGS84: 3" from the source, snapped to 30" so that 30" is an exact 10 x 10 aggregate
        spec3 = codes.layer(f"emc-built-{product}-3ss")
        res3 = layer_resolution(spec3)
        g3 = target_grid(src_crs, src_transform, shape, spec3.grid.crs, res3, snap=10 * res3)
        fine3 = move(layers_10m[product], src_crs, src_transform, g3)
        levels["3ss"] = (fine3, g3)
        res30 = 10 * res3
        levels["30ss"] = (
            merge(fine3, 10),
            Grid(
                g3.crs,
                Affine(res30, 0, g3.transform.c, 0, -res30, g3.transform.f),
                (g3.shape[0] // 10, g3.shape[1] // 10),
            ),
        )
        for suffix, (values, grid) in levels.items():
            spec = codes.layer(f"emc-built-{product}-{suffix}")
            out[spec.id] = (encode(values, spec), grid)
    return out
