"""Grids: areas of interest, target grids, the EEA reference grid and its 25 km roll-out tiles.

Everything here is computed, nothing is read from a file:

- `Aoi`: a bbox in any CRS; `utm_epsg` gives the UTM zone of a point.
- `TileGrid`: a north-up raster grid (CRS, transform, shape), built from bounds and a resolution
  snapped to the resolution, with window and sub-grid helpers.
- `EeaCell`: the EEA reference grid's 100 km cells in EPSG:3035. The code ``E40N30`` names the
  cell whose lower-left corner is at x = 40 × 100 km, y = 30 × 100 km (E = x // 100 km,
  N = y // 100 km); the published grid's ``100kmE40N30`` is accepted as well.
- `RolloutTile`: the 25 km production tiles, 16 per cell, coded ``<cell>-25K-r<row>c<col>`` with
  row 0..3 counted from the cell's north edge and col 0..3 from its west edge, so that
  ``E40N30-25K-r0c0`` is the north-west quarter-of-a-quarter and its window in the cell's raster
  starts at (row × 25 km, col × 25 km) from the upper-left corner.

- `layer_tiles`: the tiles a layer's grid spec declares (tile size and origin), e.g. the CISC 90 km
  tiles or the EMC-BUILT 10° tiles, with codes ``90kmE44N33`` / ``10degE1N4`` (the EEA 100 km grid
  keeps its ``E40N30`` codes).

The Sentinel-2 tiles covering a cell, a roll-out tile or an AOI are in `landstack.catalog.mgrs`.

Geometries for STAC are GeoJSON polygons in WGS84 (`Tile.geometry`); the item builder takes the
`Tile` (id, grid) and derives the `proj:*` fields from its `TileGrid`. Tiles crossing the
antimeridian are not split.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError
from shapely.geometry import Polygon, box

from landstack.catalog.errors import GridError
from landstack.catalog.spec import Grid as GridSpec

WGS84 = "EPSG:4326"
EEA_CRS = "EPSG:3035"
EEA_CELL_M = 100_000
ROLLOUT_M = 25_000
ROLLOUT_PER_SIDE = EEA_CELL_M // ROLLOUT_M
_DENSIFY = 21

Bounds = tuple[float, float, float, float]


# --- CRS helpers -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def parse_crs(code: str) -> CRS:
    """A CRS from a code or WKT (cached); GridError naming it when unknown."""
    try:
        return CRS.from_user_input(code)
    except CRSError as e:
        raise GridError(f"CRS {code!r} is not known: {e}; give a code such as 'EPSG:3035'") from e


def crs_code(crs: Any) -> str:
    """'AUTH:CODE' of a CRS given as a code, WKT, pyproj or rasterio CRS (what `proj:code` carries)."""
    return _authority(crs if isinstance(crs, str) else (crs.to_wkt() if hasattr(crs, "to_wkt") else str(crs)))


@functools.lru_cache(maxsize=256)
def _authority(text: str) -> str:
    found = parse_crs(text).to_authority(min_confidence=90)
    if found is None:
        raise GridError(f"CRS {text[:80]!r} has no authority code; use a CRS with an EPSG/ESRI code")
    return f"{found[0]}:{found[1]}"


@functools.lru_cache(maxsize=256)
def transformer(src: str, dst: str) -> Transformer:
    """A cached lon/lat-ordered (always_xy) transformer between two CRS."""
    return Transformer.from_crs(parse_crs(src), parse_crs(dst), always_xy=True)


def transform_bounds(bounds: Bounds, src: str, dst: str) -> Bounds:
    """Outer bounds of `bounds` (in `src`) in `dst`, with densified edges."""
    if parse_crs(src) == parse_crs(dst):
        return bounds
    try:
        b = transformer(src, dst).transform_bounds(*bounds, densify_pts=_DENSIFY)
    except ProjError as e:
        raise GridError(f"cannot transform bounds {bounds} from {src} to {dst}: {e}") from e
    if not all(math.isfinite(v) for v in b):
        raise GridError(f"bounds {bounds} in {src} fall outside the area of {dst}; check the CRS")
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def _ring(bounds: Bounds, n: int = _DENSIFY) -> tuple[np.ndarray, np.ndarray]:
    """A closed, counter-clockwise ring around bounds with n points per edge."""
    x0, y0, x1, y1 = bounds
    t = np.linspace(0.0, 1.0, n)[:-1]
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full(t.size, x1), x1 - (x1 - x0) * t, np.full(t.size, x0)])
    ys = np.concatenate([np.full(t.size, y0), y0 + (y1 - y0) * t, np.full(t.size, y1), y1 - (y1 - y0) * t])
    return np.append(xs, xs[0]), np.append(ys, ys[0])


def bounds_polygon(bounds: Bounds, src: str, dst: str, points_per_edge: int = _DENSIFY) -> Polygon:
    """The rectangle `bounds` (in `src`) as a densified polygon in `dst`."""
    xs, ys = _ring(bounds, points_per_edge)
    if parse_crs(src) != parse_crs(dst):
        xs, ys = transformer(src, dst).transform(xs, ys)
        if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
            raise GridError(f"bounds {bounds} in {src} fall outside the area of {dst}; check the CRS")
    return Polygon(zip(xs, ys, strict=True))


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 / UTM zone containing lon/lat (plain 6° zones)."""
    zone = min(60, max(1, math.floor((lon + 180) / 6) + 1))
    return (32600 if lat >= 0 else 32700) + zone


def utm_crs(lon: float, lat: float) -> str:
    """'EPSG:326xx' / 'EPSG:327xx' of the UTM zone containing lon/lat."""
    return f"EPSG:{utm_epsg(lon, lat)}"


# --- AOI -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Aoi:
    """An area of interest: bbox (minx, miny, maxx, maxy) in `crs`."""

    bbox: tuple[float, float, float, float]
    crs: str = WGS84

    def __post_init__(self) -> None:
        if len(self.bbox) != 4 or not all(math.isfinite(float(v)) for v in self.bbox):
            raise GridError(f"AOI bbox {self.bbox} must be four finite numbers minx, miny, maxx, maxy")
        x0, y0, x1, y1 = (float(v) for v in self.bbox)
        if x0 >= x1 or y0 >= y1:
            raise GridError(f"AOI bbox {self.bbox} is empty or inverted; give minx < maxx and miny < maxy")
        object.__setattr__(self, "bbox", (x0, y0, x1, y1))
        parse_crs(self.crs)

    @classmethod
    def around(cls, lon: float, lat: float, size_m: float) -> Aoi:
        """A square AOI of `size_m` metres centred on lon/lat (in the point's UTM zone)."""
        crs = utm_crs(lon, lat)
        x, y = transformer(WGS84, crs).transform(lon, lat)
        h = size_m / 2
        return cls((x - h, y - h, x + h, y + h), crs)

    def to_crs(self, crs: str) -> Bounds:
        """The bbox in another CRS (outer bounds)."""
        return transform_bounds(self.bbox, self.crs, crs)

    def polygon(self, crs: str) -> Polygon:
        """The AOI's outline in `crs` (densified, so a bbox in one CRS stays exact in another)."""
        return bounds_polygon(self.bbox, self.crs, crs)

    def __str__(self) -> str:
        return f"bbox {tuple(round(v, 6) for v in self.bbox)} ({self.crs})"


# --- target grids --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TileGrid:
    """A north-up raster grid: CRS, affine transform (pixel corners) and shape (rows, cols)."""

    crs: str
    transform: Affine
    shape: tuple[int, int]

    def __post_init__(self) -> None:
        t = self.transform
        if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
            raise GridError(f"grid transform {tuple(t)[:6]} is not north-up; rotated grids are not supported")
        if self.shape[0] <= 0 or self.shape[1] <= 0:
            raise GridError(f"grid shape {self.shape} must be positive")

    @classmethod
    def from_bounds(cls, bounds: Bounds, resolution: float, crs: str, align: float | None = None) -> TileGrid:
        """The grid covering `bounds`, its edges snapped outwards to multiples of `align` (the
        resolution by default)."""
        if resolution <= 0:
            raise GridError(f"resolution {resolution} must be positive")
        step = align or resolution
        if not float(step / resolution).is_integer() and not float(resolution / step).is_integer():
            raise GridError(f"alignment {step} must be a multiple of the resolution {resolution}")
        x0, y0, x1, y1 = bounds
        # a tolerance keeps bounds that are already on the grid from growing by a pixel
        eps = 1e-9 * max(1.0, abs(x0), abs(y0), abs(x1), abs(y1))
        x0, y0 = math.floor((x0 + eps) / step) * step, math.floor((y0 + eps) / step) * step
        x1, y1 = math.ceil((x1 - eps) / step) * step, math.ceil((y1 - eps) / step) * step
        w, h = round((x1 - x0) / resolution), round((y1 - y0) / resolution)
        if w <= 0 or h <= 0:
            raise GridError(f"bounds {bounds} are empty at resolution {resolution}")
        return cls(crs, Affine(resolution, 0.0, x0, 0.0, -resolution, y1), (h, w))

    @property
    def resolution(self) -> float:
        return float(self.transform.a)

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def bounds(self) -> Bounds:
        t, (h, w) = self.transform, self.shape
        return (t.c, t.f + h * t.e, t.c + w * t.a, t.f)

    def proj_transform(self) -> list[float]:
        """The six affine coefficients [a, b, c, d, e, f] (STAC `proj:transform`)."""
        return [float(v) for v in tuple(self.transform)[:6]]

    def window(self, bounds: Bounds) -> tuple[int, int, int, int]:
        """(row_off, col_off, height, width) of `bounds`, which must lie on this grid."""
        t = self.transform
        col = (bounds[0] - t.c) / t.a
        row = (t.f - bounds[3]) / -t.e
        w = (bounds[2] - bounds[0]) / t.a
        h = (bounds[3] - bounds[1]) / -t.e
        vals = [row, col, h, w]
        if not all(abs(v - round(v)) < 1e-6 for v in vals):
            raise GridError(f"bounds {bounds} are not aligned to the grid {self}; snap them first")
        return (round(row), round(col), round(h), round(w))

    def sub_grid(self, bounds: Bounds) -> TileGrid:
        """The part of this grid covering `bounds`, snapped outwards to its pixels (it may reach past
        this grid's edges, e.g. for a buffered production unit)."""
        row, col, h, w = self.window(self._snap(bounds))
        return TileGrid(self.crs, self.transform @ Affine.translation(col, row), (h, w))

    def _snap(self, bounds: Bounds) -> Bounds:
        t = self.transform
        r = self.resolution
        eps = 1e-9 * max(1.0, *(abs(v) for v in bounds))
        x0 = t.c + math.floor((bounds[0] - t.c + eps) / r) * r
        x1 = t.c + math.ceil((bounds[2] - t.c - eps) / r) * r
        y1 = t.f - math.floor((t.f - bounds[3] + eps) / r) * r
        y0 = t.f - math.ceil((t.f - bounds[1] - eps) / r) * r
        return (x0, y0, x1, y1)

    def blocks(self, size: int) -> Iterator[tuple[int, int, int, int]]:
        """Windows (row_off, col_off, height, width) of at most size × size pixels, row by row."""
        h, w = self.shape
        for r in range(0, h, size):
            for c in range(0, w, size):
                yield (r, c, min(size, h - r), min(size, w - c))

    def geometry(self) -> dict[str, Any]:
        """The grid's footprint as a GeoJSON polygon in WGS84 (edges densified to 4 segments, which
        keeps a 100 km tile's outline within a few metres of the curved true edge)."""
        return _geojson(bounds_polygon(self.bounds, self.crs, WGS84, points_per_edge=5))

    def bbox_wgs84(self) -> Bounds:
        return transform_bounds(self.bounds, self.crs, WGS84)

    def __str__(self) -> str:
        return f"{self.shape[1]}x{self.shape[0]} px at {self.resolution:g} in {self.crs} {self.bounds}"


def _geojson(poly: Polygon) -> dict[str, Any]:
    coords = [[round(float(x), 7), round(float(y), 7)] for x, y in poly.exterior.coords]
    return {"type": "Polygon", "coordinates": [coords]}


@dataclass(frozen=True)
class Tile:
    """A named tile: its id and grid; what the item builder needs about where an item lies."""

    id: str
    grid: TileGrid

    def geometry(self) -> dict[str, Any]:
        """GeoJSON polygon in WGS84 (STAC item geometry)."""
        return self.grid.geometry()

    def bbox(self) -> Bounds:
        """WGS84 bbox (STAC item bbox)."""
        return self.grid.bbox_wgs84()


# --- the EEA reference grid ----------------------------------------------------------------------------

_EEA_CODE = re.compile(r"^(?:100km)?E(\d+)N(\d+)$")
_ROLLOUT_CODE = re.compile(r"^(?:100km)?E(\d+)N(\d+)-25K-r([0-3])c([0-3])$")


@dataclass(frozen=True, order=True)
class EeaCell:
    """A 100 km cell of the EEA reference grid (EPSG:3035); `e`, `n` in units of 100 km."""

    e: int
    n: int

    @classmethod
    def from_code(cls, code: str) -> EeaCell:
        """The cell of a code such as 'E40N30' (or '100kmE40N30')."""
        m = _EEA_CODE.match(code.strip())
        if not m:
            raise GridError(f"{code!r} is not an EEA 100 km cell code; write it like 'E40N30'")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def at(cls, x: float, y: float) -> EeaCell:
        """The cell containing the EPSG:3035 point x, y."""
        return cls(math.floor(x / EEA_CELL_M), math.floor(y / EEA_CELL_M))

    @property
    def code(self) -> str:
        return f"E{self.e}N{self.n}"

    @property
    def bounds(self) -> Bounds:
        x0, y0 = self.e * EEA_CELL_M, self.n * EEA_CELL_M
        return (float(x0), float(y0), float(x0 + EEA_CELL_M), float(y0 + EEA_CELL_M))

    def grid(self, resolution: float = 10.0) -> TileGrid:
        return TileGrid.from_bounds(self.bounds, resolution, EEA_CRS)

    def tile(self, resolution: float = 10.0) -> Tile:
        return Tile(self.code, self.grid(resolution))

    def rollout_tiles(self) -> list[RolloutTile]:
        """The 16 roll-out tiles of this cell, row by row from the north-west."""
        return [RolloutTile(self, r, c) for r in range(ROLLOUT_PER_SIDE) for c in range(ROLLOUT_PER_SIDE)]

    def __str__(self) -> str:
        return self.code


@dataclass(frozen=True, order=True)
class RolloutTile:
    """A 25 km roll-out tile: row and col 0..3 inside its cell, row 0 at the north edge."""

    cell: EeaCell
    row: int
    col: int

    def __post_init__(self) -> None:
        if not (0 <= self.row < ROLLOUT_PER_SIDE and 0 <= self.col < ROLLOUT_PER_SIDE):
            raise GridError(
                f"roll-out row/col ({self.row}, {self.col}) must lie in 0..{ROLLOUT_PER_SIDE - 1}"
            )

    @classmethod
    def from_code(cls, code: str) -> RolloutTile:
        """The tile of a code such as 'E40N30-25K-r1c2'."""
        m = _ROLLOUT_CODE.match(code.strip())
        if not m:
            raise GridError(
                f"{code!r} is not a roll-out tile code; write it like 'E40N30-25K-r1c2' (r, c 0..3)"
            )
        return cls(EeaCell(int(m.group(1)), int(m.group(2))), int(m.group(3)), int(m.group(4)))

    @classmethod
    def at(cls, x: float, y: float) -> RolloutTile:
        """The roll-out tile containing the EPSG:3035 point x, y."""
        cell = EeaCell.at(x, y)
        x0, _y0, _x1, y1 = cell.bounds
        return cls(cell, int((y1 - y) // ROLLOUT_M), int((x - x0) // ROLLOUT_M))

    @property
    def code(self) -> str:
        return f"{self.cell.code}-25K-r{self.row}c{self.col}"

    @property
    def bounds(self) -> Bounds:
        x0, _y0, _x1, y1 = self.cell.bounds
        left, top = x0 + self.col * ROLLOUT_M, y1 - self.row * ROLLOUT_M
        return (left, top - ROLLOUT_M, left + ROLLOUT_M, top)

    def grid(self, resolution: float = 10.0) -> TileGrid:
        return TileGrid.from_bounds(self.bounds, resolution, EEA_CRS)

    def tile(self, resolution: float = 10.0) -> Tile:
        return Tile(self.code, self.grid(resolution))

    def __str__(self) -> str:
        return self.code


def _candidates(aoi: Aoi, size: int) -> tuple[Polygon, range, range]:
    poly = aoi.polygon(EEA_CRS)
    x0, y0, x1, y1 = poly.bounds
    return (
        poly,
        range(math.floor(x0 / size), math.floor(x1 / size) + 1),
        range(math.floor(y0 / size), math.floor(y1 / size) + 1),
    )


def eea_cells(aoi: Aoi) -> list[EeaCell]:
    """The EEA 100 km cells the AOI (in any CRS) intersects, sorted by code position."""
    poly, es, ns = _candidates(aoi, EEA_CELL_M)
    out = [EeaCell(e, n) for n in ns for e in es]
    return sorted(c for c in out if poly.intersects(box(*c.bounds)) and not poly.touches(box(*c.bounds)))


def rollout_tiles(aoi: Aoi) -> list[RolloutTile]:
    """The 25 km roll-out tiles the AOI (in any CRS) intersects."""
    poly, xs, ys = _candidates(aoi, ROLLOUT_M)
    out = []
    for j in ys:
        for i in xs:
            b = box(i * ROLLOUT_M, j * ROLLOUT_M, (i + 1) * ROLLOUT_M, (j + 1) * ROLLOUT_M)
            if poly.intersects(b) and not poly.touches(b):
                out.append(RolloutTile.at((i + 0.5) * ROLLOUT_M, (j + 0.5) * ROLLOUT_M))
    return sorted(out)


# --- the tiles a layer spec declares ----------------------------------------------------------------

_LAYER_TILE_CODE = re.compile(r"^(?:[0-9.]+(?:km|m|deg))?E(-?\d+)N(-?\d+)$")


def _spec_units(spec: GridSpec) -> tuple[float, float]:
    """(pixel size, tile size) of a layer grid spec in CRS units (arc-seconds become degrees)."""
    if spec.tile_size is None:
        raise GridError(f"grid {spec.name!r} is delivered as single files, not tiles")
    factor = 1 / 3600 if spec.resolution_unit == "arcsec" else 1.0
    return spec.resolution * factor, spec.tile_size * factor


def _is_eea(spec: GridSpec) -> bool:
    return crs_code(spec.crs) == EEA_CRS and spec.tile_size == EEA_CELL_M and tuple(spec.origin) == (0, 0)


def layer_tile(spec: GridSpec, col: int, row: int) -> Tile:
    """Tile (col, row) of a layer's grid spec, counted from its origin in tile units (lower-left
    corner at origin + (col, row) × tile size). Codes: ``E40N30`` on the EEA 100 km grid, else the
    tile size and the indices, e.g. ``90kmE44N33`` or ``10degE1N4``."""
    res, size = _spec_units(spec)
    x0, y0 = spec.origin[0] + col * size, spec.origin[1] + row * size
    if _is_eea(spec):
        code = EeaCell(col, row).code
    else:
        label = f"{size:g}deg" if spec.resolution_unit == "arcsec" else f"{size / 1000:g}km"
        code = f"{label}E{col}N{row}"
    return Tile(code, TileGrid.from_bounds((x0, y0, x0 + size, y0 + size), res, spec.crs))


def layer_tile_by_code(spec: GridSpec, code: str) -> Tile:
    """The tile of a layer's grid spec with this code (see `layer_tile`)."""
    m = _LAYER_TILE_CODE.match(code.strip())
    if not m:
        raise GridError(f"{code!r} is not a tile code of grid {spec.name!r}; write it like 'E40N30'")
    tile = layer_tile(spec, int(m.group(1)), int(m.group(2)))
    if tile.id != code.strip():
        raise GridError(
            f"{code!r} is not a tile code of grid {spec.name!r}; its tiles are coded like {tile.id!r}"
        )
    return tile


def layer_tiles(spec: GridSpec, aoi: Aoi) -> list[Tile]:
    """The tiles of a layer's grid spec that the AOI (in any CRS) intersects."""
    _res, size = _spec_units(spec)
    poly = aoi.polygon(spec.crs)
    ox, oy = spec.origin
    x0, y0, x1, y1 = poly.bounds
    out = []
    for row in range(math.floor((y0 - oy) / size), math.floor((y1 - oy) / size) + 1):
        for col in range(math.floor((x0 - ox) / size), math.floor((x1 - ox) / size) + 1):
            b = box(ox + col * size, oy + row * size, ox + (col + 1) * size, oy + (row + 1) * size)
            if poly.intersects(b) and not poly.touches(b):
                out.append(layer_tile(spec, col, row))
    return out


# --- arrays with a spatial_ref (odc-stac, rioxarray) ------------------------------------------


def stack_crs(stack: Any) -> CRS:
    """The CRS of an array's spatial_ref coordinate (what odc-stac and rioxarray write)."""
    if "spatial_ref" not in stack.coords:
        raise GridError(
            "the array has no spatial_ref coordinate; load it with landstack.pipelines.ingest.load_stack"
        )
    ref = stack.spatial_ref
    wkt = ref.attrs.get("crs_wkt") or ref.attrs.get("spatial_ref")
    return parse_crs(str(wkt)) if wkt else parse_crs(f"EPSG:{int(ref.values)}")


def grid_of_stack(stack: Any) -> TileGrid:
    """The grid of an (…, y, x) array with pixel-centre coordinates and a spatial_ref coordinate."""
    x, y = stack.x.values, stack.y.values
    if x.size < 2 or y.size < 2:
        raise GridError("the array needs at least 2 x 2 pixels to derive its grid")
    dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
    t = Affine(dx, 0.0, float(x[0]) - dx / 2, 0.0, dy, float(y[0]) - dy / 2)
    return TileGrid(crs_code(stack_crs(stack)), t, (int(y.size), int(x.size)))
