"""Vector and raster auxiliary inputs rasterised onto a tile's grid.

Correction areas (a target class per polygon) and sea masks arrive as GeoJSON or GeoPackage files
(or as rasters); they are burnt into arrays on the grid of the tile being post-processed. GeoPackage
geometries are decoded from the standard GPKG binary header + WKB with sqlite3, so no OGR binding is
needed.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio import features, warp
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from shapely import wkb
from shapely.geometry import mapping

from landstack.pipelines.products.errors import VectorInputError
from landstack.storage import S3Options, gdal_env, open_url

Feature = tuple[dict[str, Any], dict[str, Any]]  # (geometry, properties)


def read_features(url: str, s3: S3Options | None = None) -> tuple[list[Feature], CRS]:
    """Geometries and properties of a GeoJSON (.json/.geojson) or GeoPackage (.gpkg) file."""
    try:
        with open_url(url, "rb", s3) as f:
            data = f.read()
    except (OSError, ValueError) as e:
        raise VectorInputError(f"cannot read vector file {url}: {e}") from e
    if url.lower().endswith(".gpkg"):
        return _read_gpkg(data, url)
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as e:
        raise VectorInputError(f"{url} is neither a GeoPackage (.gpkg) nor valid GeoJSON: {e}") from e
    crs = CRS.from_epsg(4326)
    name = ((doc.get("crs") or {}).get("properties") or {}).get("name")
    if name:
        crs = CRS.from_user_input(name)
    feats = doc.get("features", [doc] if doc.get("type") == "Feature" else [])
    out = [(f["geometry"], f.get("properties") or {}) for f in feats if f.get("geometry")]
    return out, crs


def _read_gpkg(data: bytes, url: str) -> tuple[list[Feature], CRS]:
    with tempfile.NamedTemporaryFile(suffix=".gpkg") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            con = sqlite3.connect(tmp.name)
            table, column, srs_id = con.execute(
                "SELECT table_name, column_name, srs_id FROM gpkg_geometry_columns LIMIT 1"
            ).fetchone()
            row = con.execute(
                "SELECT organization, organization_coordsys_id, definition FROM gpkg_spatial_ref_sys "
                "WHERE srs_id = ?",
                (srs_id,),
            ).fetchone()
            cur = con.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
            con.close()
        except (sqlite3.Error, TypeError) as e:
            raise VectorInputError(f"{url} is not a readable GeoPackage with a feature table: {e}") from e
    crs = CRS.from_epsg(int(row[1])) if row and str(row[0]).upper() == "EPSG" else CRS.from_wkt(row[2])
    out: list[Feature] = []
    for values in rows:
        props = dict(zip(names, values, strict=True))
        blob = props.pop(column)
        if blob:
            out.append((mapping(wkb.loads(_gpkg_wkb(bytes(blob)))), props))
    return out, crs


def _gpkg_wkb(blob: bytes) -> bytes:
    """Strip the GeoPackage binary header (magic, version, flags, srs id, envelope) off a geometry."""
    if blob[:2] != b"GP":
        raise VectorInputError("geometry blob lacks the GeoPackage 'GP' magic")
    flags = blob[3]
    envelope = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}.get((flags >> 1) & 0x07, 0)
    return blob[8 + envelope :]


def _reproject(geom: dict[str, Any], src: CRS, dst: CRS) -> dict[str, Any]:
    return geom if src == dst else warp.transform_geom(src, dst, geom)


def rasterize_classes(
    feats: Iterable[Feature],
    src_crs: CRS,
    field: str,
    shape: tuple[int, int],
    transform: Affine,
    crs: CRS | str,
    allowed: Iterable[int] | None = None,
) -> np.ndarray:
    """Burn each polygon's `field` value (a class code) onto the grid; 0 where no polygon lies.

    Later features win where polygons overlap. Codes not in `allowed` are rejected with the feature
    that carries them.
    """
    dst = CRS.from_user_input(crs)
    ok = set(allowed) if allowed is not None else None
    shapes = []
    for i, (geom, props) in enumerate(feats):
        if field not in props:
            raise VectorInputError(
                f"feature {i} has no {field!r} property (it has {sorted(props)}); add the target class"
            )
        value = int(props[field])
        if ok is not None and value not in ok:
            raise VectorInputError(
                f"feature {i}: {field}={value} is not a class of this layer; use one of {sorted(ok)}"
            )
        shapes.append((_reproject(geom, src_crs, dst), value))
    if not shapes:
        return np.zeros(shape, np.uint8)
    return features.rasterize(shapes, out_shape=shape, transform=transform, fill=0, dtype="uint8")


def rasterize_mask(
    feats: Iterable[Feature], src_crs: CRS, shape: tuple[int, int], transform: Affine, crs: CRS | str
) -> np.ndarray:
    """A boolean mask of every polygon on the grid (e.g. a sea mask)."""
    dst = CRS.from_user_input(crs)
    geoms = [_reproject(g, src_crs, dst) for g, _ in feats]
    if not geoms:
        return np.zeros(shape, bool)
    return features.geometry_mask(geoms, out_shape=shape, transform=transform, invert=True)


def read_mask_raster(
    url: str,
    shape: tuple[int, int],
    transform: Affine,
    crs: CRS | str,
    s3: S3Options | None = None,
) -> np.ndarray:
    """A boolean mask (non-zero, not nodata) from a raster, resampled onto the grid by nearest."""
    out = np.zeros(shape, np.uint8)
    try:
        with gdal_env(s3), rasterio.open(url) as src:
            warp.reproject(
                rasterio.band(src, 1),
                out,
                dst_transform=transform,
                dst_crs=CRS.from_user_input(crs),
                dst_nodata=0,
                resampling=warp.Resampling.nearest,
            )
    except RasterioError as e:
        raise VectorInputError(f"cannot read mask raster {url}: {e}") from e
    return out > 0


def load_corrections(
    url: str,
    shape: tuple[int, int],
    transform: Affine,
    crs: CRS | str,
    allowed: Iterable[int],
    field: str = "class",
    s3: S3Options | None = None,
) -> np.ndarray:
    """Recoding targets (0 = none) from a GeoJSON/GeoPackage of correction areas with a class field."""
    feats, src_crs = read_features(url, s3)
    return rasterize_classes(feats, src_crs, field, shape, transform, crs, allowed)


def load_mask(
    url: str, shape: tuple[int, int], transform: Affine, crs: CRS | str, s3: S3Options | None = None
) -> np.ndarray:
    """A mask from a vector (.geojson/.json/.gpkg) or raster file, on the grid."""
    suffix = Path(url).suffix.lower()
    if suffix in {".geojson", ".json", ".gpkg"}:
        feats, src_crs = read_features(url, s3)
        return rasterize_mask(feats, src_crs, shape, transform, crs)
    return read_mask_raster(url, shape, transform, crs, s3)
