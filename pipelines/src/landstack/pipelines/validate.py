"""Validators of what commands and steps are given: files, dates, bounding boxes, CRS codes, URLs, JSON.

Each is a plain function that returns the parsed value or raises `BadInputError` with a message
that names the value (and the option or field it came from) and says what to change. Commands and
steps call them before any work starts, so bad input never leaves anything half-written.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import posixpath
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from landstack.pipelines.errors import BadInputError
from landstack.storage import ObjectStore, S3Options

if TYPE_CHECKING:
    import pandas as pd

    from landstack.pipelines.settings import Settings

Bbox = tuple[float, float, float, float]

STORE_SCHEMES = ("file", "s3")
HTTP_SCHEMES = ("http", "https")
_PARQUET_MAGIC = b"PAR1"
_GEOJSON_TYPES = {
    "FeatureCollection",
    "Feature",
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
}


def _fail(name: str, value: Any, problem: str) -> BadInputError:
    return BadInputError(f"{name} {value!r}: {problem}")


def parse_bbox(value: str | Sequence[float], crs: str = "EPSG:4326", name: str = "--bbox") -> Bbox:
    """'minx,miny,maxx,maxy' (or four numbers) as floats with min < max; lon/lat ranges for EPSG:4326."""
    parts: Sequence[Any] = value.split(",") if isinstance(value, str) else value
    if len(parts) != 4:
        raise _fail(name, value, f"needs 4 numbers minx,miny,maxx,maxy, got {len(parts)}")
    try:
        minx, miny, maxx, maxy = (float(v) for v in parts)
    except (TypeError, ValueError) as e:
        raise _fail(name, value, "needs 4 numbers minx,miny,maxx,maxy, e.g. 16.28,48.19,16.31,48.21") from e
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise _fail(name, value, "every coordinate must be a finite number")
    if minx >= maxx or miny >= maxy:
        raise _fail(name, value, "minx must be below maxx and miny below maxy (order minx,miny,maxx,maxy)")
    if _is_wgs84(crs):
        if not (minx >= -180 and maxx <= 180):
            raise _fail(name, value, f"longitudes must lie in -180..180 for {crs}; is the CRS right?")
        if not (miny >= -90 and maxy <= 90):
            raise _fail(name, value, f"latitudes must lie in -90..90 for {crs}; is the order lon,lat?")
    return (minx, miny, maxx, maxy)


def _is_wgs84(crs: str) -> bool:
    return crs.strip().upper() in {"EPSG:4326", "OGC:CRS84", "WGS84", "CRS84"}


def check_crs(value: str, name: str = "--crs", allow_native: bool = False) -> str:
    """A CRS that GDAL/PROJ knows (e.g. EPSG:3035); 'native' too when `allow_native`."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    text = str(value).strip()
    if allow_native and text == "native":
        return text
    if not text:
        raise _fail(name, value, "is empty; give a CRS such as EPSG:4326 or EPSG:3035")
    try:
        with rasterio.Env():  # routes PROJ's own complaint to logging instead of stderr
            CRS.from_user_input(text)
    except (CRSError, ValueError, TypeError) as e:
        hint = " or 'native'" if allow_native else ""
        raise _fail(name, value, f"is not a known CRS; use an EPSG code such as EPSG:3035{hint}") from e
    return text


def parse_date(value: str | dt.date, name: str = "date") -> dt.date:
    """An ISO date (YYYY-MM-DD)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError as e:
        raise _fail(name, value, "is not a date; write it as YYYY-MM-DD, e.g. 2023-01-31") from e


def check_date_range(
    start: str | dt.date, end: str | dt.date, names: tuple[str, str] = ("--start", "--end")
) -> tuple[dt.date, dt.date]:
    """Start and end dates with start <= end."""
    d0, d1 = parse_date(start, names[0]), parse_date(end, names[1])
    if d0 > d1:
        raise BadInputError(
            f"{names[0]} {d0.isoformat()} is after {names[1]} {d1.isoformat()}; the start must not be later"
        )
    return d0, d1


def check_year(value: int, name: str = "--year", lo: int = 1980, hi: int = 2100) -> int:
    """A reference year in lo..hi."""
    if not lo <= int(value) <= hi:
        raise _fail(name, value, f"is not a plausible reference year; give a year in {lo}..{hi}")
    return int(value)


def check_range(value: float, name: str, lo: float | None = None, hi: float | None = None) -> float:
    """A finite number within [lo, hi] (either bound optional)."""
    v = float(value)
    if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        bounds = f"{'-inf' if lo is None else f'{lo:g}'}..{'inf' if hi is None else f'{hi:g}'}"
        raise _fail(name, value, f"is out of range; give a number in {bounds}")
    return v


def check_positive(value: int, name: str) -> int:
    """An integer of at least 1."""
    if int(value) < 1:
        raise _fail(name, value, "must be at least 1")
    return int(value)


def check_choice(value: str, choices: Collection[str], name: str) -> str:
    """One of `choices`."""
    if value not in choices:
        raise _fail(name, value, f"is not one of {sorted(choices)}")
    return value


def check_url(
    value: str, name: str, schemes: Sequence[str] = (*STORE_SCHEMES, *HTTP_SCHEMES), allow_path: bool = True
) -> str:
    """A URL with one of `schemes` and a host/bucket where the scheme needs one.

    A bare local path is accepted as a file:// URL when `allow_path` (and 'file' is allowed).
    """
    text = str(value).strip()
    if not text:
        raise _fail(name, value, f"is empty; give a URL ({', '.join(f'{s}://' for s in schemes)})")
    if "://" not in text:
        if allow_path and "file" in schemes:
            return Path(text).expanduser().resolve().as_uri()
        raise _fail(
            name, value, f"is not a URL; give one starting with {' or '.join(f'{s}://' for s in schemes)}"
        )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - parsing the port raises on a malformed one
    except ValueError as e:
        raise _fail(name, value, f"is a malformed URL ({e})") from e
    if parts.scheme not in schemes:
        raise _fail(name, value, f"scheme {parts.scheme!r} is not supported here; use {', '.join(schemes)}")
    if parts.scheme != "file" and not parts.netloc:
        what = "bucket" if parts.scheme == "s3" else "host"
        raise _fail(name, value, f"has no {what}; write {parts.scheme}://{what.upper()}/...")
    if parts.scheme == "s3" and len(parts.netloc) < 3:
        raise _fail(name, value, "S3 bucket names have at least 3 characters")
    return text


def check_key(value: str, name: str = "key") -> str:
    """A relative object-store key (no leading '/', no '..', no backslashes)."""
    text = str(value).strip()
    norm = posixpath.normpath(text) if text else ""
    if not text or text.startswith("/") or "\\" in text or norm == "." or norm.split("/")[0] == "..":
        raise _fail(name, value, "must be a relative key inside the object store, e.g. features/tile")
    if "://" in text:
        raise _fail(name, value, "is a URL; give a key relative to LANDSTACK_STORE_URL instead")
    return norm


def _read_head(url: str, name: str, s3: S3Options | None, size: int | None = None) -> bytes:
    """The first `size` bytes (or all) of an input file; errors name the file and the problem."""
    from landstack.storage import StoreError, open_url

    try:
        with open_url(url, "rb", s3) as f:
            return bytes(f.read() if size is None else f.read(size))
    except FileNotFoundError as e:
        raise _fail(name, url, "does not exist; check the path or URL") from e
    except IsADirectoryError as e:
        raise _fail(name, url, "is a folder; give a file") from e
    except PermissionError as e:
        raise _fail(name, url, "cannot be read (permission denied)") from e
    except (OSError, ValueError, StoreError) as e:
        raise _fail(name, url, f"cannot be read: {e}") from e


def input_url(value: str, name: str, s3: S3Options | None = None) -> str:
    """An existing, readable input file (path, file:// or s3:// URL) as a URL."""
    url = check_url(value, name, schemes=STORE_SCHEMES)
    _read_head(url, name, s3, size=1)
    return url


def read_parquet(
    value: str, name: str, s3: S3Options | None = None, columns: Sequence[str] = ()
) -> pd.DataFrame:
    """A Parquet file as a DataFrame; it must be Parquet (not CSV renamed) and have `columns`."""
    import io

    import pandas as pd

    url = check_url(value, name, schemes=STORE_SCHEMES)
    data = _read_head(url, name, s3)
    if not (data.startswith(_PARQUET_MAGIC) and data.endswith(_PARQUET_MAGIC)):
        raise _fail(name, value, "is not a Parquet file; write the table with DataFrame.to_parquet")
    try:
        df = pd.read_parquet(io.BytesIO(data))
    except Exception as e:  # pyarrow raises several types for a corrupt footer
        raise _fail(name, value, f"is a damaged Parquet file: {e}") from e
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise _fail(name, value, f"lacks the columns {missing}; it has {[str(c) for c in df.columns]}")
    return df


def parse_json(text: str | bytes, name: str) -> Any:
    """A JSON document from text."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInputError(f"{name} is not valid JSON ({e}); fix the document") from e


def read_json(value: str, name: str, s3: S3Options | None = None) -> Any:
    """A JSON file (path or URL) as a Python object."""
    url = check_url(value, name, schemes=STORE_SCHEMES)
    return parse_json(_read_head(url, name, s3), f"{name} {value!r}")


def read_geojson(
    value: str, name: str, s3: S3Options | None = None, geometry_types: Collection[str] | None = None
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (a single Feature is wrapped); optionally only `geometry_types`."""
    doc = read_json(value, name, s3)
    if not isinstance(doc, dict) or doc.get("type") not in _GEOJSON_TYPES:
        raise _fail(name, value, "is not GeoJSON; it needs a 'type' such as FeatureCollection")
    if doc["type"] == "Feature":
        doc = {"type": "FeatureCollection", "features": [doc]}
    elif doc["type"] != "FeatureCollection":
        doc = {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "geometry": doc, "properties": {}}],
        }
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise _fail(name, value, "has no features; give a FeatureCollection with at least one feature")
    for i, feat in enumerate(features):
        geom = feat.get("geometry") if isinstance(feat, dict) else None
        if not isinstance(geom, dict) or "coordinates" not in geom:
            raise _fail(name, value, f"feature {i} has no geometry with coordinates")
        if geometry_types is not None and geom.get("type") not in geometry_types:
            raise _fail(
                name,
                value,
                f"feature {i} is a {geom.get('type')}; only {sorted(geometry_types)} are used here",
            )
    return doc


def check_columns(
    df: pd.DataFrame, name: str, numeric: Sequence[str] = (), integer: Sequence[str] = ()
) -> pd.DataFrame:
    """`numeric` columns hold finite numbers and `integer` columns whole numbers (no gaps)."""
    import numpy as np
    import pandas as pd

    for col in [*numeric, *integer]:
        if col not in df.columns:
            raise BadInputError(f"{name} lacks the column {col!r}; it has {[str(c) for c in df.columns]}")
        values = df[col]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise BadInputError(f"{name}: column {col!r} holds {values.dtype} values; it must hold numbers")
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isfinite(arr).all():
            raise BadInputError(
                f"{name}: column {col!r} has {int((~np.isfinite(arr)).sum())} empty or NaN rows"
            )
        if col in integer and not np.array_equal(arr, np.round(arr)):
            raise BadInputError(f"{name}: column {col!r} must hold whole numbers (class codes)")
    return df


def check_feature_labels(doc: dict[str, Any], name: str, prop: str = "label") -> dict[str, Any]:
    """Every feature of a FeatureCollection carries a whole-number `prop` (a class code)."""
    for i, feat in enumerate(doc.get("features", [])):
        value = (feat.get("properties") or {}).get(prop)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            ident = feat.get("id", i)
            raise BadInputError(
                f"{name}: feature {ident!r} has {prop}={value!r}; every feature needs a whole-number "
                f"{prop!r} property (its class code)"
            )
    return doc


def output_folder(value: str | Path, name: str) -> Path:
    """A local folder to write into: not an existing file, inside a writable existing parent."""
    import os

    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise _fail(name, str(value), "is a file; give a folder to write into")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise _fail(name, str(value), f"cannot be created: {parent} is not a writable folder")
    return path


def output_store(settings: Settings) -> ObjectStore:
    """The configured object store, after checking LANDSTACK_STORE_URL is a file:// or s3:// URL."""
    check_url(settings.store_url, "LANDSTACK_STORE_URL", schemes=STORE_SCHEMES, allow_path=False)
    return settings.store()
