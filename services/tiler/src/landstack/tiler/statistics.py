"""AOI statistics of a product layer: area per class, or mean and sum, per reference year.

Every item of the year that the AOI touches is read at its native resolution, window by window
(at most `CHUNK` x `CHUNK` pixels at a time, so memory follows the chunk, not the tile), and only
pixels whose centre lies inside the AOI count. Product tiles are disjoint grid cells, so a pixel
is counted once. Pixel areas come from the raster's grid: exact for projected grids (EPSG:3035,
Mollweide), per row on the ellipsoid for geographic grids (the 3″/30″ layers).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio
import rasterio.warp
from pyproj import Geod
from rasterio.errors import RasterioError
from rasterio.features import geometry_mask, geometry_window
from rasterio.warp import transform_geom
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from shapely.geometry import shape

from landstack.catalog import LayerSpec
from landstack.tiler.errors import AoiError, ReadError
from landstack.tiler.symbology import is_classified, layer_of

CHUNK = 1024
_GEOD = Geod(ellps="WGS84")


def aoi_area_km2(geometry: Mapping[str, Any]) -> float:
    """Geodesic area of a WGS84 (multi)polygon in km²."""
    try:
        geom = shape(geometry)
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise AoiError(f"the AOI is not a GeoJSON geometry ({e}); send a Polygon or MultiPolygon") from e
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        raise AoiError(f"the AOI is a {geom.geom_type}; send a non-empty Polygon or MultiPolygon")
    if not geom.is_valid:
        raise AoiError("the AOI polygon is not valid (self-intersecting?); repair it and send it again")
    area, _ = _GEOD.geometry_area_perimeter(geom)
    return abs(area) / 1e6


@dataclass
class _Tally:
    """Running totals of one year."""

    counts: dict[int, int] = field(default_factory=dict)
    area_m2: dict[int, float] = field(default_factory=dict)
    n: int = 0
    total: float = 0.0
    weighted: float = 0.0  # value x pixel area, for area-weighted means on geographic grids
    valid_area_m2: float = 0.0
    vmin: float = math.inf
    vmax: float = -math.inf


def _local_path(href: str) -> str:
    return href[len("file://") :] if href.startswith("file://") else href


def _row_areas(ds: Any, window: Window) -> np.ndarray:
    """Area in m² of one pixel on each row of the window."""
    t = window_transform(window, ds.transform)
    if not ds.crs.is_geographic:
        return np.full(int(window.height), abs(t.a * t.e), dtype="float64")
    rows = np.arange(int(window.height))
    north = t.f + rows * t.e
    south = north + t.e
    lat_n, lat_s = np.radians(np.maximum(north, south)), np.radians(np.minimum(north, south))
    # area of a lat/lon cell on the authalic sphere of WGS84
    r = 6371007.2
    return np.asarray(r * r * np.radians(abs(t.a)) * (np.sin(lat_n) - np.sin(lat_s)), dtype="float64")


def _chunks(window: Window) -> Iterator[Window]:
    for r in range(int(window.row_off), int(window.row_off + window.height), CHUNK):
        for c in range(int(window.col_off), int(window.col_off + window.width), CHUNK):
            h = min(CHUNK, int(window.row_off + window.height) - r)
            w = min(CHUNK, int(window.col_off + window.width) - c)
            yield Window(c, r, w, h)


def _read_item(href: str, aoi: Mapping[str, Any], layer: LayerSpec, tally: _Tally) -> None:
    nodata_codes = {c.value for c in layer.classes if c.nodata} | {layer.nodata}
    classified = is_classified(layer)
    try:
        with rasterio.open(_local_path(href)) as ds:
            geom = transform_geom("EPSG:4326", ds.crs, aoi)
            try:
                full = geometry_window(ds, [geom]).intersection(Window(0, 0, ds.width, ds.height))
            except Exception:  # rasterio raises WindowError (or ValueError) when they do not overlap
                return
            for win in _chunks(full):
                data = ds.read(1, window=win)
                inside = ~geometry_mask(
                    [geom], out_shape=data.shape, transform=window_transform(win, ds.transform)
                )
                valid = inside & ~np.isin(data, list(nodata_codes))
                if ds.nodata is not None:
                    valid &= data != ds.nodata
                if not valid.any():
                    continue
                areas = np.broadcast_to(_row_areas(ds, win)[:, None], data.shape)
                values = data[valid]
                pix_area = areas[valid]
                tally.valid_area_m2 += float(pix_area.sum())
                if classified:
                    codes, counts = np.unique(values, return_counts=True)
                    for code, cnt in zip(codes.tolist(), counts.tolist(), strict=True):
                        tally.counts[int(code)] = tally.counts.get(int(code), 0) + int(cnt)
                        tally.area_m2[int(code)] = tally.area_m2.get(int(code), 0.0) + float(
                            pix_area[values == code].sum()
                        )
                else:
                    scaled = values.astype("float64") * layer.scale + layer.offset
                    tally.n += int(scaled.size)
                    tally.total += float(scaled.sum())
                    tally.weighted += float((scaled * pix_area).sum())
                    tally.vmin = min(tally.vmin, float(scaled.min()))
                    tally.vmax = max(tally.vmax, float(scaled.max()))
    except RasterioError as e:
        raise ReadError(f"cannot read {href}: {e}; check that the asset exists and is readable") from e


def _year_result(layer: LayerSpec, year: int, item_ids: list[str], tally: _Tally) -> dict[str, Any]:
    out: dict[str, Any] = {
        "year": year,
        "items": item_ids,
        "valid_area_km2": tally.valid_area_m2 / 1e6,
    }
    if is_classified(layer):
        total = sum(tally.area_m2.values()) or 1.0
        out["valid_pixels"] = sum(tally.counts.values())
        out["classes"] = [
            {
                "value": code,
                "name": (cls.name if (cls := layer.code_of(code)) else str(code)),
                "pixels": tally.counts[code],
                "area_km2": tally.area_m2[code] / 1e6,
                "percent": 100.0 * tally.area_m2[code] / total,
            }
            for code in sorted(tally.counts)
        ]
    else:
        out["valid_pixels"] = tally.n
        out["sum"] = tally.total
        out["mean"] = tally.total / tally.n if tally.n else None
        out["area_weighted_mean"] = tally.weighted / tally.valid_area_m2 if tally.valid_area_m2 else None
        out["min"] = tally.vmin if tally.n else None
        out["max"] = tally.vmax if tally.n else None
    return out


def asset_href(item: Mapping[str, Any], layer: LayerSpec) -> str:
    """The href of the layer's data asset in a product item."""
    assets = item.get("assets") or {}
    asset = assets.get(layer.asset_key) or next(
        (a for a in assets.values() if "data" in (a.get("roles") or [])), None
    )
    if not asset or not asset.get("href"):
        raise ReadError(f"item {item.get('id')!r} has no data asset {layer.asset_key!r}")
    return str(asset["href"])


def aoi_statistics(
    collection_id: str, aoi: Mapping[str, Any], items_by_year: Mapping[int, Iterable[Mapping[str, Any]]]
) -> dict[str, Any]:
    """Statistics of a layer inside a WGS84 AOI for each year, from that year's items."""
    layer = layer_of(collection_id)
    area = aoi_area_km2(aoi)
    years = []
    for year in sorted(items_by_year):
        tally = _Tally()
        ids = []
        for item in items_by_year[year]:
            ids.append(str(item.get("id")))
            _read_item(asset_href(item, layer), aoi, layer, tally)
        years.append(_year_result(layer, year, ids, tally))
    return {
        "collection": collection_id,
        "classified": is_classified(layer),
        "unit": layer.unit,
        "aoi_area_km2": area,
        "years": years,
    }


def pixel_value(item: Mapping[str, Any], collection_id: str, lon: float, lat: float) -> dict[str, Any] | None:
    """The layer's value at a WGS84 point of an item (None outside the raster or on nodata)."""
    layer = layer_of(collection_id)
    href = asset_href(item, layer)
    try:
        with rasterio.open(_local_path(href)) as ds:
            xs, ys = rasterio.warp.transform("EPSG:4326", ds.crs, [lon], [lat])
            row, col = ds.index(xs[0], ys[0])
            if not (0 <= row < ds.height and 0 <= col < ds.width):
                return None
            value = ds.read(1, window=Window(col, row, 1, 1))[0, 0].item()
    except RasterioError as e:
        raise ReadError(f"cannot read {href}: {e}; check that the asset exists and is readable") from e
    cls = layer.code_of(int(value)) if float(value).is_integer() else None
    if value == layer.nodata or (cls is not None and cls.nodata):
        return None
    out: dict[str, Any] = {"value": value, "unit": layer.unit, "item": item.get("id")}
    if cls is not None:
        out["name"], out["color"] = cls.name, cls.color
    return out
