"""Production units: one model per unit (biogeographical region or polygon), and a fallback.

Units come either from the EEA 10 km reference grid's biogeographical-region lists (a CSV with
columns ``region``, ``CELLCODE``; a cell listed under several regions goes to the first one
listed) or from a GeoJSON of polygons with a unit id property. Samples are assigned by their
``x``, ``y`` (EPSG:3035 metres for the grid; the polygons' CRS for polygons).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.path import Path as MplPath

from landstack.models.errors import UnitsError

FALLBACK = "fallback"
BIOGEO_CSV = "converted/biogeoregions10km.csv"


def cell_code(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """EEA 10 km cell codes (``10kmE###N###``) of EPSG:3035 coordinates."""
    e = np.floor(np.asarray(x, dtype=np.float64) / 10_000).astype(np.int64)
    n = np.floor(np.asarray(y, dtype=np.float64) / 10_000).astype(np.int64)
    return np.array([f"10kmE{a}N{b}" for a, b in zip(e, n, strict=True)])


def read_biogeo_cells(path: str | Path) -> dict[str, str]:
    """Mapping 10 km cell code -> biogeographical region from the grid CSV (or its folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / BIOGEO_CSV
    try:
        df = pd.read_csv(p, usecols=["region", "CELLCODE"], dtype=str)
    except FileNotFoundError as e:
        raise UnitsError(
            f"biogeographical-region grid {p} does not exist; pass the EEA 10 km grid CSV"
        ) from e
    except ValueError as e:
        raise UnitsError(f"{p} needs columns 'region' and 'CELLCODE': {e}") from e
    first = df.drop_duplicates("CELLCODE", keep="first")
    return dict(zip(first["CELLCODE"], first["region"], strict=True))


def units_from_grid(cells: dict[str, str], xy: np.ndarray) -> np.ndarray:
    """Unit (region) of each sample; '' where the cell is not in the grid."""
    codes = cell_code(xy[:, 0], xy[:, 1])
    return np.array([cells.get(c, "") for c in codes], dtype=object)


def _rings(geometry: dict) -> list[list[list[list[float]]]]:
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    if geometry["type"] == "MultiPolygon":
        return list(geometry["coordinates"])
    raise UnitsError(f"unit geometry of type {geometry['type']!r}; only Polygon and MultiPolygon are units")


def units_from_polygons(geojson: str | Path, xy: np.ndarray, id_property: str = "unit") -> np.ndarray:
    """Unit id of each sample from the polygons (property `id_property`, else the feature id); '' outside."""
    p = Path(geojson)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError as e:
        raise UnitsError(f"unit polygons {p} do not exist") from e
    except json.JSONDecodeError as e:
        raise UnitsError(f"unit polygons {p} are not valid GeoJSON: {e}") from e
    out = np.full(len(xy), "", dtype=object)
    for i, feat in enumerate(doc.get("features", [])):
        unit = (feat.get("properties") or {}).get(id_property, feat.get("id", f"unit-{i}"))
        inside = np.zeros(len(xy), dtype=bool)
        for poly in _rings(feat["geometry"]):
            hit = MplPath(np.asarray(poly[0])[:, :2]).contains_points(xy)
            for hole in poly[1:]:
                hit &= ~MplPath(np.asarray(hole)[:, :2]).contains_points(xy)
            inside |= hit
        out[inside & (out == "")] = str(unit)
    return out


def plan_units(units: np.ndarray, min_samples: int) -> dict[str, np.ndarray]:
    """Row indices per unit that has at least `min_samples` samples, plus the fallback (every row).

    Samples of small or unknown units are only in the fallback, which production uses wherever
    a unit has no model of its own.
    """
    plan: dict[str, np.ndarray] = {}
    for unit in sorted({u for u in units if u}):
        rows = np.flatnonzero(units == unit)
        if len(rows) >= min_samples:
            plan[str(unit)] = rows
    plan[FALLBACK] = np.arange(len(units))
    return plan
