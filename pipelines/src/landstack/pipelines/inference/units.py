"""Production units on a tile: which unit covers each pixel, and where each unit's model applies.

Units are GeoJSON polygons with a unit id property (else the feature id), in EPSG:3035 unless the
document names its CRS in a `crs` member. On a tile, each unit is rasterised on the tile grid
(a pixel belongs to the first unit whose polygon holds its centre) and its model applies over the
unit's area grown by a buffer, so units meeting inside a tile overlap for the blending step.
Pixels outside every buffered unit get the fallback model.

Model names follow the registry naming of `train --units ... --register`: ``<name>-<unit>`` when
registered, else ``<name>-fallback``, else ``<name>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from landstack.catalog.grid import TileGrid
from landstack.pipelines.errors import BadInputError
from landstack.storage import S3Options, open_url

FALLBACK = "fallback"
DEFAULT_CRS = "EPSG:3035"


@dataclass(frozen=True)
class UnitArea:
    """One unit on the tile: its id, its own pixels and the buffered area its model predicts."""

    unit: str
    area: np.ndarray  # (H, W) bool, buffered


@dataclass(frozen=True)
class TileUnits:
    """The units touching a tile: the unit index raster (0 = none, i = units[i-1]) and their areas."""

    index: np.ndarray  # (H, W) uint16, unbuffered
    units: list[UnitArea]

    @property
    def names(self) -> list[str]:
        """The unit ids: value i of `index` is names[i - 1] (the fallback is not a unit)."""
        return [u.unit for u in self.units if u.unit != FALLBACK]


def _crs_of(doc: dict[str, Any]) -> str:
    crs = doc.get("crs")
    if not crs:
        return DEFAULT_CRS
    name = crs.get("properties", {}).get("name") if isinstance(crs, dict) else crs
    if not isinstance(name, str):
        raise BadInputError(f"unit polygons: crs member {crs!r} names no CRS; use {{'type': 'name', ...}}")
    if name.startswith("urn:ogc:def:crs:"):  # urn:ogc:def:crs:EPSG::3035
        parts = name.split(":")
        name = "OGC:CRS84" if parts[-1] == "CRS84" else f"{parts[4]}:{parts[-1]}"
    return name


def read_units(
    url: str, s3: S3Options | None = None, id_property: str = "unit"
) -> tuple[list[tuple[str, dict]], str]:
    """(unit id, geometry) of every feature of the GeoJSON at `url`, and the document's CRS."""
    try:
        with open_url(url, "rb", s3) as f:
            doc = json.loads(f.read())
    except (OSError, ValueError) as e:
        raise BadInputError(
            f"unit polygons {url} cannot be read as GeoJSON: {e}; give a GeoJSON FeatureCollection"
        ) from e
    feats = doc.get("features") if isinstance(doc, dict) else None
    if not feats:
        raise BadInputError(
            f"unit polygons {url} hold no features; give a FeatureCollection of unit polygons"
        )
    out = []
    for i, feat in enumerate(feats):
        geom = feat.get("geometry") or {}
        if geom.get("type") not in ("Polygon", "MultiPolygon"):
            raise BadInputError(
                f"unit polygons {url}: feature {i} is a {geom.get('type')!r}; only (Multi)Polygons are units"
            )
        unit = (feat.get("properties") or {}).get(id_property, feat.get("id", f"unit-{i}"))
        if str(unit) == FALLBACK:
            raise BadInputError(f"unit polygons {url}: a unit may not be called {FALLBACK!r}; rename it")
        out.append((str(unit), geom))
    return out, _crs_of(doc)


def _rasterise(geoms: list[dict], grid: TileGrid, pad: int) -> np.ndarray:
    from rasterio.features import rasterize
    from rasterio.transform import Affine

    t = grid.transform
    transform = t * Affine.translation(-pad, -pad)
    shape = (grid.height + 2 * pad, grid.width + 2 * pad)
    return rasterize(
        [(g, 1) for g in geoms], out_shape=shape, transform=transform, fill=0, dtype="uint8"
    ).astype(bool)


def tile_units(
    url: str, grid: TileGrid, buffer_m: float, s3: S3Options | None = None, id_property: str = "unit"
) -> TileUnits:
    """The units whose buffered area touches the tile, their areas on its grid and the unit index."""
    from rasterio.warp import transform_geom
    from scipy.ndimage import distance_transform_edt

    if buffer_m < 0:
        raise BadInputError(f"unit_buffer_m {buffer_m} is negative; give a distance in metres >= 0")
    units, crs = read_units(url, s3, id_property)
    by_unit: dict[str, list[dict]] = {}
    for unit, geom in units:
        g = geom if crs == grid.crs else transform_geom(crs, grid.crs, geom)
        by_unit.setdefault(unit, []).append(g)
    pad = int(np.ceil(buffer_m / grid.resolution))
    core = (slice(pad, pad + grid.height), slice(pad, pad + grid.width))
    index = np.zeros(grid.shape, np.uint16)
    areas: list[UnitArea] = []
    for unit, geoms in by_unit.items():
        own = _rasterise(geoms, grid, pad)
        if not own.any():
            continue
        grown = distance_transform_edt(~own) * grid.resolution <= buffer_m if pad else own
        area = grown[core]
        if not area.any():
            continue
        areas.append(UnitArea(unit, np.ascontiguousarray(area)))
        index[(index == 0) & own[core]] = len(areas)
    covered = np.zeros(grid.shape, bool)
    for a in areas:
        covered |= a.area
    if not covered.all():
        areas.append(UnitArea(FALLBACK, ~covered))
    return TileUnits(index, areas)


def unit_model_name(name: str, unit: str, registered: Callable[[str], bool]) -> str:
    """``<name>-<unit>`` if registered, else ``<name>-fallback`` if registered, else `name`."""
    for candidate in (f"{name}-{unit}", f"{name}-{FALLBACK}"):
        if registered(candidate):
            return candidate
    return name
