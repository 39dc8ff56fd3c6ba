"""Training samples: time-series features at labelled points, as one wide Parquet table.

Table format (one row per point):

- `label` (int16): class code (CLCplus Backbone 1..11).
- `group` (int64): id of the object (field, polygon, parcel) the point lies in; split train/test
  by group so that pixels of one object never land on both sides.
- `x`, `y` (float64): point coordinates, in the CRS given as `points_crs` (kept in the table attrs).
- `data_score` (int16): number of valid (cloud-free) observations behind the point's series.
- `<feature>_<t>` (float32): feature value at time step t = 0 … 53 (10-day steps over the
  reference year ± 3 months), e.g. `B01_0 … B01_53`, `B03_0 …`, `NDVI_0 … NDVI_53`; surface
  reflectance for bands, -1..1 for indices; NaN where the point has no valid observation.

Labelled polygons become points first (:func:`polygon_points`): every pixel whose centre lies in a
polygon is a sample, with the polygon's label and the polygon as its `group`.

Further point attributes (e.g. `imperviousness`, `builtup`) are carried over unchanged before the
feature columns. Features are in the order of the FeatureConfig (by default B01 B03 B04 B05 B08 B09
B11 B12 NDVI NDWI NDMI NBR), steps in time order, so `table[feature_columns(...)]` reshapes to
(n, features, steps) for a TempCNN. Only the stack chunks containing points are read.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform

from landstack.catalog.grid import stack_crs
from landstack.pipelines.errors import SampleError
from landstack.pipelines.features import FeatureConfig, _days, _offsets, series_features, time_steps
from landstack.storage import ObjectStore

REQUIRED_COLUMNS = ("x", "y", "label")


def feature_columns(names: Sequence[str], n_steps: int) -> list[str]:
    """Column names `<feature>_<t>` in table order."""
    return [f"{n}_{t}" for n in names for t in range(n_steps)]


def point_pixels(
    stack: xr.Dataset, xs: np.ndarray, ys: np.ndarray, points_crs: str
) -> tuple[np.ndarray, ...]:
    """Row/column of each point in the stack grid and whether it falls inside."""
    crs = stack_crs(stack)
    if CRS.from_user_input(points_crs) != crs:
        tx, ty = warp_transform(CRS.from_user_input(points_crs), crs, list(xs), list(ys))
        xs, ys = np.asarray(tx), np.asarray(ty)
    x0, dx = float(stack.x[0]), float(stack.x[1] - stack.x[0])
    y0, dy = float(stack.y[0]), float(stack.y[1] - stack.y[0])
    col = np.floor((xs - x0) / dx + 0.5).astype(np.int64)
    row = np.floor((ys - y0) / dy + 0.5).astype(np.int64)
    inside = (col >= 0) & (col < stack.sizes["x"]) & (row >= 0) & (row < stack.sizes["y"])
    return row, col, inside


def _gather(
    variables: list[str], stack: xr.Dataset, row: np.ndarray, col: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(V-1, T, P) values and (T, P) SCL at the points, computing only the chunks that hold points."""
    import dask
    import dask.array as da

    arrays = [
        stack[v].data if isinstance(stack[v].data, da.Array) else da.from_array(stack[v].data)
        for v in variables
    ]
    ychunks, xchunks = arrays[0].chunks[1], arrays[0].chunks[2]
    yb = np.searchsorted(np.cumsum(ychunks), row, side="right")
    xb = np.searchsorted(np.cumsum(xchunks), col, side="right")
    y0 = np.concatenate([[0], np.cumsum(ychunks)])
    x0 = np.concatenate([[0], np.cumsum(xchunks)])
    t = arrays[0].shape[0]
    out = [np.zeros((t, row.size), a.dtype) for a in arrays]
    blocks = sorted(set(zip(yb.tolist(), xb.tolist(), strict=True)))
    for start in range(0, len(blocks), 8):  # a few chunks at a time bounds memory
        batch = blocks[start : start + 8]
        lazy = [[a.blocks[:, by, bx] for a in arrays] for by, bx in batch]
        for (by, bx), values in zip(batch, dask.compute(*lazy), strict=True):
            sel = np.nonzero((yb == by) & (xb == bx))[0]
            for o, v in zip(out, values, strict=True):
                o[:, sel] = v[:, row[sel] - y0[by], col[sel] - x0[bx]]
    return np.stack(out[:-1]), out[-1]


def polygon_points(
    stack: xr.Dataset,
    polygons: dict[str, Any],
    polygons_crs: str = "EPSG:4326",
    *,
    label_property: str = "label",
    max_pixels_per_polygon: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Pixel centres of the stack grid inside each labelled polygon (GeoJSON FeatureCollection).

    Returns x, y (in the stack CRS), label and group (the feature's integer `id`, else its index).
    Each polygon is rasterised in its own window, so memory follows polygon size, not tile size.
    """
    from rasterio.features import rasterize
    from rasterio.transform import Affine
    from rasterio.warp import transform_geom

    crs = stack_crs(stack)
    src_crs = CRS.from_user_input(polygons_crs)
    xs, ys = stack.x.to_numpy(), stack.y.to_numpy()
    dx, dy = float(xs[1] - xs[0]), float(ys[1] - ys[0])
    rng = np.random.default_rng(seed)
    rows: list[pd.DataFrame] = []
    for i, feat in enumerate(polygons.get("features", [])):
        props = feat.get("properties") or {}
        name = feat.get("id", i)
        if label_property not in props:
            raise SampleError(f"polygon {name!r} has no {label_property!r} property; label every polygon")
        geom = feat.get("geometry")
        if not geom or geom.get("type") not in ("Polygon", "MultiPolygon"):
            raise SampleError(f"feature {name!r} is not a Polygon or MultiPolygon")
        if src_crs != crs:
            geom = transform_geom(src_crs, crs, geom)
        ring = np.array([pt for part in _rings(geom) for pt in part], dtype=float)
        c0 = max(int(np.floor((ring[:, 0].min() - xs[0]) / dx)) - 1, 0)
        c1 = min(int(np.ceil((ring[:, 0].max() - xs[0]) / dx)) + 2, xs.size)
        r_a, r_b = (ring[:, 1].min() - ys[0]) / dy, (ring[:, 1].max() - ys[0]) / dy
        r0 = max(int(np.floor(min(r_a, r_b))) - 1, 0)
        r1 = min(int(np.ceil(max(r_a, r_b))) + 2, ys.size)
        if c1 <= c0 or r1 <= r0:
            continue
        window = Affine(dx, 0, xs[c0] - dx / 2, 0, dy, ys[r0] - dy / 2)
        mask = rasterize([(geom, 1)], out_shape=(r1 - r0, c1 - c0), transform=window, fill=0, dtype="uint8")
        rr, cc = np.nonzero(mask)
        if max_pixels_per_polygon is not None and rr.size > max_pixels_per_polygon:
            keep = rng.choice(rr.size, max_pixels_per_polygon, replace=False)
            rr, cc = rr[keep], cc[keep]
        group = int(name) if isinstance(name, int) or str(name).isdigit() else i
        rows.append(
            pd.DataFrame(
                {"x": xs[c0 + cc], "y": ys[r0 + rr], "label": int(props[label_property]), "group": group}
            )
        )
    if not rows:
        raise SampleError("no polygon covers a pixel centre of the stack; check the polygons and their CRS")
    return pd.concat(rows, ignore_index=True)


def _rings(geom: dict[str, Any]) -> list[list[list[float]]]:
    coords = geom["coordinates"]
    return [ring for poly in (coords if geom["type"] == "MultiPolygon" else [coords]) for ring in poly]


def extract_samples(
    stack: xr.Dataset,
    points: pd.DataFrame,
    reference_year: int,
    *,
    points_crs: str,
    cfg: FeatureConfig | None = None,
) -> pd.DataFrame:
    """The wide training table (see the module docstring) for points lying in the stack."""
    cfg = cfg or FeatureConfig()
    missing = [c for c in REQUIRED_COLUMNS if c not in points.columns]
    if missing:
        raise SampleError(f"the points lack columns {missing}; give x, y, label (and optionally group)")
    row, col, inside = point_pixels(
        stack, points["x"].to_numpy(float), points["y"].to_numpy(float), points_crs
    )
    if not inside.any():
        x0, x1, y0, y1 = (float(v) for v in (stack.x.min(), stack.x.max(), stack.y.min(), stack.y.max()))
        raise SampleError(
            f"none of the {len(points)} points lies in the stack "
            f"(x {x0:.0f}..{x1:.0f}, y {y0:.0f}..{y1:.0f}); check points_crs={points_crs}"
        )
    pts = points.loc[inside].reset_index(drop=True)
    row, col = row[inside], col[inside]
    steps = time_steps(reference_year, cfg.step_days, cfg.margin_months)
    t1 = steps[-1] + np.timedelta64(cfg.step_days, "D")
    sub = stack.sel(time=slice(str(steps[0]), str(t1)))
    bands = cfg.needed_bands
    dn, scl = _gather([*bands, "SCL"], sub, row, col)
    feats, score = series_features(
        {b: dn[i] for i, b in enumerate(bands)}, scl, _offsets(sub), _days(sub.time.values), _days(steps), cfg
    )
    table = pd.DataFrame(
        {
            "label": pts["label"].astype(np.int16).to_numpy(),
            "group": (pts["group"] if "group" in pts else pd.Series(np.arange(len(pts))))
            .astype(np.int64)
            .to_numpy(),
            "x": pts["x"].astype(np.float64).to_numpy(),
            "y": pts["y"].astype(np.float64).to_numpy(),
            "data_score": score.astype(np.int16),
        }
    )
    for c in pts.columns:
        if c not in table.columns and c not in ("row", "col"):
            table[c] = pts[c].to_numpy()
    wide = feats.transpose(2, 0, 1).reshape(len(pts), -1)  # (P, F*S) feature-major
    fcols = pd.DataFrame(wide, columns=feature_columns(cfg.names, steps.size))
    out = pd.concat([table, fcols], axis=1)
    out.attrs["crs"] = points_crs
    return out


def write_table(table: pd.DataFrame, store: ObjectStore, key: str) -> str:
    """Write the table as Parquet (atomically); returns the href."""
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    return store.put_bytes(key, buf.getvalue())
