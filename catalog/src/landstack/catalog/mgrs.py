"""Sentinel-2 tiles: the MGRS 100 km squares of each UTM zone as 109,800 m tiles, computed.

A tile's id is zone, latitude band of the 100 km square's centre, and the square's column and row
letters (standard lettering: column sets A–H, J–R, S–Z repeating every three zones; rows A–V
without I and O, shifted by five letters in even zones). A tile's upper-left corner is the
square's upper-left corner snapped outwards to the 60 m grid; it extends 109,800 m east and
south, overlapping its neighbours by 9,800 m. The zone widths follow the MGRS exceptions as the
Sentinel-2 grid applies them: 32V reaches west to 3°E (31V keeps its 6°), and Svalbard's X band
has only the zones 31, 33, 35 and 37, each 9° or 12° wide.

`s2_tiles(area)` lists the tiles whose footprint overlaps an EEA cell, a roll-out tile, an AOI or
any bounds. It lists every MGRS square whose tile reaches into its zone's longitude strip, which
is a superset of the published Sentinel-2 grid: that grid leaves out tiles over open sea and a few
squares on a zone's western edge that reach only a little into the zone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from shapely.geometry import box

from landstack.catalog.errors import GridError
from landstack.catalog.grid import (
    EEA_CRS,
    WGS84,
    Aoi,
    Bounds,
    EeaCell,
    RolloutTile,
    Tile,
    TileGrid,
    bounds_polygon,
    parse_crs,
    transformer,
)

S2_TILE_M = 109_800
S2_ALIGN_M = 60  # the coarsest Sentinel-2 band: tile corners sit on its grid


_BANDS = "CDEFGHJKLMNPQRSTUVWX"  # 8° latitude bands from 80°S; X spans 72..84°N
_COLUMN_SETS = ("STUVWXYZ", "ABCDEFGH", "JKLMNPQR")  # indexed by zone % 3
_ROWS = "ABCDEFGHJKLMNPQRSTUV"
_MGRS_ID = re.compile(r"^T?(\d{1,2})([C-HJ-NP-X])([A-HJ-NP-Z])([A-HJ-NP-V])$")
# zone widths that differ from 6° (west, east longitude) per (zone, band)
_ZONE_EXCEPTIONS: dict[tuple[int, str], tuple[float, float]] = {
    (32, "V"): (3.0, 12.0),  # the Sentinel-2 grid keeps 31V at its full width
    (31, "X"): (0.0, 9.0),
    (33, "X"): (9.0, 21.0),
    (35, "X"): (21.0, 33.0),
    (37, "X"): (33.0, 42.0),
}
_NO_ZONE = {(32, "X"), (34, "X"), (36, "X")}


def latitude_band(lat: float) -> str:
    """MGRS latitude band letter (C..X) of a latitude; the polar caps clamp to C and X."""
    if lat >= 72:
        return "X"
    return _BANDS[max(0, int((lat + 80) // 8))]


def _zone_strip(zone: int, band: str) -> tuple[float, float] | None:
    if (zone, band) in _NO_ZONE:
        return None
    west = -180.0 + (zone - 1) * 6
    return _ZONE_EXCEPTIONS.get((zone, band), (west, west + 6))


def _epsg(zone: int, band: str) -> int:
    return (32600 if band >= "N" else 32700) + zone


def _square_origin(x: float, top: float, south: bool) -> tuple[float, float]:
    """Upper-left corner of the tile of the square whose upper-left corner is (x, top): snapped
    outwards to the 60 m grid, which starts at the equator (the false northing in the south)."""
    equator = 10_000_000.0 if south else 0.0
    ulx = math.floor(x / S2_ALIGN_M) * S2_ALIGN_M
    uly = math.ceil((top - equator) / S2_ALIGN_M) * S2_ALIGN_M + equator
    return float(ulx), float(uly)


@dataclass(frozen=True, order=True)
class MgrsTile:
    """A Sentinel-2 tile: MGRS id, UTM EPSG code and upper-left corner (109,800 m square)."""

    id: str
    epsg: int
    ulx: float
    uly: float

    @property
    def crs(self) -> str:
        return f"EPSG:{self.epsg}"

    @property
    def zone(self) -> int:
        return self.epsg % 100

    @property
    def band(self) -> str:
        return self.id[2]

    @property
    def bounds(self) -> Bounds:
        return (self.ulx, self.uly - S2_TILE_M, self.ulx + S2_TILE_M, self.uly)

    @property
    def origin(self) -> tuple[float, float]:
        """Lower-left corner (xmin, ymin) in the tile's UTM zone."""
        return (self.ulx, self.uly - S2_TILE_M)

    def grid(self, resolution: float = 10.0) -> TileGrid:
        return TileGrid.from_bounds(self.bounds, resolution, self.crs)

    def tile(self, resolution: float = 10.0) -> Tile:
        return Tile(self.id, self.grid(resolution))

    def __str__(self) -> str:
        return self.id


def _mgrs_tile(zone: int, k: int, n: int, south: bool, in_strip: bool = True) -> MgrsTile | None:
    """The tile of the 100 km square (column k = easting // 100 km, row n = northing // 100 km);
    with `in_strip`, None unless its footprint reaches into the zone's longitude strip."""
    if not 1 <= k <= 8:
        return None
    epsg = (32700 if south else 32600) + zone
    crs = f"EPSG:{epsg}"
    lat = transformer(crs, WGS84).transform((k + 0.5) * 1e5, (n + 0.5) * 1e5)[1]
    if not (math.isfinite(lat) and -84.5 <= lat <= 84.5) or (lat < 0) != south:
        return None
    band = latitude_band(lat)
    strip = _zone_strip(zone, band)
    if strip is None:
        return None
    col = _COLUMN_SETS[zone % 3][k - 1]
    row = _ROWS[(n + (5 if zone % 2 == 0 else 0)) % 20]
    ulx, uly = _square_origin(k * 1e5, (n + 1) * 1e5, south)
    tile = MgrsTile(f"{zone:02d}{band}{col}{row}", epsg, ulx, uly)
    if not in_strip:
        return tile
    # the tile belongs to this zone only where its footprint reaches into the zone's strip
    footprint = bounds_polygon(tile.bounds, crs, WGS84)
    if footprint.bounds[2] <= strip[0] or footprint.bounds[0] >= strip[1]:
        return None
    return tile


def mgrs_tile(tile_id: str) -> MgrsTile:
    """The Sentinel-2 tile of an MGRS id such as '31UFU' (or 'T31UFU')."""
    m = _MGRS_ID.match(tile_id.strip().upper())
    if not m:
        raise GridError(f"{tile_id!r} is not an MGRS tile id; write it like '31UFU'")
    zone, band, col, row = int(m.group(1)), m.group(2), m.group(3), m.group(4)
    if not 1 <= zone <= 60 or col not in _COLUMN_SETS[zone % 3]:
        raise GridError(f"{tile_id!r}: column letter {col!r} is not used in UTM zone {zone}")
    k = _COLUMN_SETS[zone % 3].index(col) + 1
    south = band < "N"
    lat_lo = -84.0 if band == "C" else -80.0 + _BANDS.index(band) * 8
    lat_hi = 84.0 if band == "X" else -80.0 + _BANDS.index(band) * 8 + 8
    cm = -183.0 + zone * 6
    t = transformer(WGS84, f"EPSG:{_epsg(zone, band)}")
    _, y_lo = t.transform(cm, lat_lo - 1)
    _, y_hi = t.transform(cm, lat_hi + 1)
    offset = 5 if zone % 2 == 0 else 0
    for n in range(math.floor(y_lo / 1e5), math.ceil(y_hi / 1e5) + 1):
        if _ROWS[(n + offset) % 20] != row:
            continue
        found = _mgrs_tile(zone, k, n, south, in_strip=False)
        if found is not None and found.id == f"{zone:02d}{band}{col}{row}":
            return found
    raise GridError(f"{tile_id!r}: no 100 km square with row {row!r} lies in band {band} of zone {zone}")


def mgrs_tile_at(x: float, y: float, crs: str) -> MgrsTile:
    """The Sentinel-2 tile whose 100 km MGRS square contains the point x, y of a UTM CRS."""
    epsg = parse_crs(crs).to_epsg()
    if epsg is None or not (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
        raise GridError(
            f"{crs!r} is not a WGS 84 / UTM zone; give the point in its UTM CRS (EPSG:326xx/327xx)"
        )
    tile = _mgrs_tile(epsg % 100, math.floor(x / 1e5), math.floor(y / 1e5), epsg > 32700, in_strip=False)
    if tile is None:
        raise GridError(f"point ({x}, {y}) lies outside the MGRS squares of {crs}")
    return tile


def s2_tiles_for(bounds: Bounds, crs: str) -> list[MgrsTile]:
    """The Sentinel-2 tiles (every MGRS square, land or sea) whose footprint overlaps `bounds`."""
    area = bounds_polygon(bounds, crs, WGS84)
    lon0, lat0, lon1, lat1 = area.bounds
    zones = range(max(1, math.floor((lon0 + 180) / 6)), min(60, math.floor((lon1 + 180) / 6) + 2) + 1)
    found: set[MgrsTile] = set()
    for zone in zones:
        for south in {lat0 < 0, lat1 < 0}:
            utm = f"EPSG:{(32700 if south else 32600) + zone}"
            try:
                local = bounds_polygon(bounds, crs, utm)
            except GridError:
                continue
            x0, y0, x1, y1 = local.bounds
            for k in range(max(1, math.floor((x0 - S2_TILE_M) / 1e5)), min(8, math.floor(x1 / 1e5)) + 1):
                for n in range(math.floor(y0 / 1e5), math.floor((y1 + S2_TILE_M) / 1e5) + 1):
                    tile = _mgrs_tile(zone, k, n, south)
                    if tile is None:
                        continue
                    footprint = box(*tile.bounds)
                    if local.intersects(footprint) and not local.touches(footprint):
                        found.add(tile)
    return sorted(found)


def s2_tiles(area: Aoi | EeaCell | RolloutTile) -> list[MgrsTile]:
    """The Sentinel-2 tiles whose footprint overlaps an AOI, an EEA cell or a roll-out tile."""
    if isinstance(area, Aoi):
        return s2_tiles_for(area.bbox, area.crs)
    return s2_tiles_for(area.bounds, EEA_CRS)
