"""The grid module: AOIs, target grids, EEA cells, 25 km roll-out tiles and Sentinel-2 MGRS tiles,
checked against the published EEA reference grid and the Sentinel-2 tiling grid in ../shared."""

from __future__ import annotations

import csv
import math
import sqlite3
import struct
from pathlib import Path
from typing import Any

import pytest
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box, shape

from landstack.catalog.errors import GridError
from landstack.catalog.grid import (
    Aoi,
    EeaCell,
    RolloutTile,
    TileGrid,
    bounds_polygon,
    eea_cells,
    rollout_tiles,
    utm_epsg,
)
from landstack.catalog.mgrs import MgrsTile, mgrs_tile, mgrs_tile_at, s2_tiles

from ..conftest import shared_path

EEA_GPKG = (
    "data",
    "grids",
    "eea-reference-grid-rN2000",
    "converted",
    "eea_reference_grid_100km_from_rN2000.gpkg",
)
S2_CSV = ("data", "grids", "s2-mgrs-from-sits", "s2_mgrs_tiles.csv")


def _envelope(blob: bytes) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) from a GeoPackage geometry header with an XY envelope."""
    assert blob[:2] == b"GP"
    flags = blob[3]
    assert (flags >> 1) & 0b111 == 1, "expected an XY envelope"
    little = flags & 1
    minx, maxx, miny, maxy = struct.unpack(("<" if little else ">") + "4d", blob[8:40])
    return (minx, miny, maxx, maxy)


@pytest.fixture(scope="module")
def eea_reference() -> list[tuple[str, float, float, tuple[float, float, float, float]]]:
    path = shared_path(*EEA_GPKG)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        table, srs = conn.execute("SELECT table_name, srs_id FROM gpkg_contents").fetchone()
        assert srs == 3035
        rows = conn.execute(f'SELECT CellCode, EofOrigin, NofOrigin, geom FROM "{table}"').fetchall()
    return [(code, e, n, _envelope(geom)) for code, e, n, geom in rows]


@pytest.fixture(scope="module")
def s2_reference() -> dict[str, tuple[int, float, float]]:
    path = shared_path(*S2_CSV)
    with Path(path).open() as f:
        return {r["tile_id"]: (int(r["epsg"]), float(r["xmin"]), float(r["ymin"])) for r in csv.DictReader(f)}


# --- EEA reference grid --------------------------------------------------------------------------------


def test_every_published_eea_cell_has_the_computed_code_and_bounds(eea_reference: list) -> None:
    assert len(eea_reference) > 5000
    for code, e, n, env in eea_reference:
        cell = EeaCell.from_code(code)
        assert cell.bounds == (e, n, e + 100_000, n + 100_000) == env, code
        assert f"100km{cell.code}" == code
        assert EeaCell.at(e + 50_000, n + 50_000) == cell
        assert EeaCell.from_code(cell.code) == cell


def test_cell_code_scheme() -> None:
    cell = EeaCell.from_code("E40N30")
    assert cell.bounds == (4_000_000.0, 3_000_000.0, 4_100_000.0, 3_100_000.0)
    assert EeaCell.at(4_099_999.9, 3_000_000.0).code == "E40N30"
    grid = cell.grid(10)
    assert grid.crs == "EPSG:3035" and grid.shape == (10_000, 10_000)
    assert grid.transform == Affine(10, 0, 4_000_000, 0, -10, 3_100_000)
    for bad in ("E40", "40N30", "E4xN30", ""):
        with pytest.raises(GridError, match="write it like 'E40N30'"):
            EeaCell.from_code(bad)


def test_aoi_in_wgs84_gives_the_published_cells_it_touches(eea_reference: list) -> None:
    aoi = Aoi((9.0, 47.0, 11.5, 48.5), "EPSG:4326")
    found = [c.code for c in eea_cells(aoi)]
    # reference: the published cells whose square intersects the AOI outline in EPSG:3035
    to_laea = Transformer.from_crs("EPSG:4326", "EPSG:3035", always_xy=True)
    xs = [9.0 + 2.5 * i / 50 for i in range(51)]
    ys = [47.0 + 1.5 * i / 50 for i in range(51)]
    ring = (
        [(x, 47.0) for x in xs]
        + [(11.5, y) for y in ys]
        + [(x, 48.5) for x in reversed(xs)]
        + [(9.0, y) for y in reversed(ys)]
    )
    outline = shape({"type": "Polygon", "coordinates": [[to_laea.transform(x, y) for x, y in ring]]})
    expected = sorted(
        code.removeprefix("100km") for code, _e, _n, env in eea_reference if outline.intersects(box(*env))
    )
    assert sorted(found) == expected
    assert len(found) >= 4


def test_aoi_in_utm_inside_one_cell() -> None:
    # Vienna: LAEA x ≈ 4.79e6, y ≈ 2.81e6
    aoi = Aoi.around(16.37, 48.21, 2000)
    assert aoi.crs == "EPSG:32633"
    assert [c.code for c in eea_cells(aoi)] == ["E47N28"]
    tiles = rollout_tiles(aoi)
    assert tiles and all(t.cell.code == "E47N28" for t in tiles)


# --- 25 km roll-out tiles -------------------------------------------------------------------------------


def test_sixteen_rollout_tiles_tile_their_cell_exactly() -> None:
    cell = EeaCell.from_code("E40N30")
    tiles = cell.rollout_tiles()
    assert len(tiles) == 16 and len({t.code for t in tiles}) == 16
    union = box(*tiles[0].bounds)
    for t in tiles[1:]:
        assert union.intersection(box(*t.bounds)).area == 0
        union = union.union(box(*t.bounds))
    assert union.equals(box(*cell.bounds))
    nw = tiles[0]
    assert nw.code == "E40N30-25K-r0c0"
    assert nw.bounds == (4_000_000.0, 3_075_000.0, 4_025_000.0, 3_100_000.0)
    cell_grid = cell.grid(10)
    for t in tiles:
        assert RolloutTile.from_code(t.code) == t
        assert RolloutTile.at(*box(*t.bounds).centroid.coords[0]) == t
        assert cell_grid.window(t.bounds) == (t.row * 2500, t.col * 2500, 2500, 2500)
        assert cell_grid.sub_grid(t.bounds) == t.grid(10)
    assert RolloutTile.from_code("E40N30-25K-r1c2").bounds == (
        4_050_000.0,
        3_050_000.0,
        4_075_000.0,
        3_075_000.0,
    )
    with pytest.raises(GridError, match="E40N30-25K-r1c2"):
        RolloutTile.from_code("E40N30-25K-r4c0")


def test_rollout_tiles_of_an_aoi_cover_it_and_nothing_more() -> None:
    aoi = Aoi((4_020_000, 3_040_000, 4_060_000, 3_060_000), "EPSG:3035")
    codes = [t.code for t in rollout_tiles(aoi)]
    # x 4020..4060 km crosses columns 0, 1, 2; y 3040..3060 km lies in rows 1 and 2
    assert sorted(codes) == sorted(f"E40N30-25K-r{r}c{c}" for r in (1, 2) for c in (0, 1, 2))
    # an AOI on tile edges does not pick up the neighbours it only touches
    edge = Aoi((4_025_000, 3_050_000, 4_050_000, 3_075_000), "EPSG:3035")
    assert [t.code for t in rollout_tiles(edge)] == ["E40N30-25K-r1c1"]


# --- target grids ----------------------------------------------------------------------------------------


def test_tile_grid_from_bounds_snaps_outwards() -> None:
    g = TileGrid.from_bounds((1003.0, 2001.0, 1995.0, 2999.0), 10, "EPSG:3035")
    assert g.bounds == (1000.0, 2000.0, 2000.0, 3000.0) and g.shape == (100, 100)
    on_grid = TileGrid.from_bounds((1000.0, 2000.0, 2000.0, 3000.0), 10, "EPSG:3035")
    assert on_grid == g
    coarse = TileGrid.from_bounds((1003.0, 2001.0, 1995.0, 2999.0), 10, "EPSG:3035", align=60)
    assert coarse.bounds == (960.0, 1980.0, 2040.0, 3000.0)
    assert g.window((1500.0, 2000.0, 2000.0, 2500.0)) == (50, 50, 50, 50)
    with pytest.raises(GridError, match="not aligned"):
        g.window((1505.0, 2000.0, 2000.0, 2500.0))
    sub = g.sub_grid((1505.0, 2000.0, 1999.0, 2500.0))
    assert sub.bounds == (1500.0, 2000.0, 2000.0, 2500.0)
    assert sum(h * w for _r, _c, h, w in g.blocks(32)) == 100 * 100
    geom = shape(g.geometry())
    assert geom.is_valid and geom.exterior.is_ccw


def test_bad_aois_and_crs_are_named() -> None:
    with pytest.raises(GridError, match=r"minx < maxx"):
        Aoi((10.0, 48.0, 9.0, 49.0))
    with pytest.raises(GridError, match="EPSG:99999"):
        Aoi((0.0, 0.0, 1.0, 1.0), "EPSG:99999")
    with pytest.raises(GridError, match="finite"):
        Aoi((0.0, math.nan, 1.0, 1.0))


def test_utm_zone_of_a_point() -> None:
    assert utm_epsg(16.37, 48.21) == 32633
    assert utm_epsg(-3.7, 40.4) == 32630
    assert utm_epsg(151.2, -33.9) == 32756
    assert utm_epsg(180.0, 0.0) == 32660


# --- Sentinel-2 MGRS tiles -----------------------------------------------------------------------------


def test_mgrs_ids_parse_to_the_published_epsg_and_origin(s2_reference: dict) -> None:
    ids = sorted(s2_reference)
    sample = [*ids[::40], "31UFU", "32TNT", "33UUU", "29RKH", "19UDP", "01CDH", "60CWS", "31WGV", "37XEA"]
    for tile_id in sample:
        if tile_id not in s2_reference:
            continue
        tile = mgrs_tile(tile_id)
        assert (tile.epsg, *tile.origin) == s2_reference[tile_id], tile_id
        assert tile.id == tile_id
    assert mgrs_tile("T31UFU").bounds == (600_000.0, 5_790_240.0, 709_800.0, 5_900_040.0)
    with pytest.raises(GridError, match="31UFU"):
        mgrs_tile("31UIU")


def _published_tiles_over(cell: EeaCell, ref: dict[str, tuple[int, float, float]]) -> set[str]:
    out = set()
    outlines: dict[int, object] = {}
    for tile_id, (epsg, x, y) in ref.items():
        if not 28 <= epsg % 100 <= 38 or epsg > 32700:
            continue
        if epsg not in outlines:
            outlines[epsg] = bounds_polygon(cell.bounds, "EPSG:3035", f"EPSG:{epsg}")
        outline = outlines[epsg]
        footprint = box(x, y, x + 109_800, y + 109_800)
        if outline.intersects(footprint) and not outline.touches(footprint):  # type: ignore[attr-defined]
            out.add(tile_id)
    return out


@pytest.mark.parametrize(
    ("code", "inland"),
    [
        ("E42N28", True),
        ("E45N35", True),
        ("E50N20", True),
        ("E38N26", True),
        ("E40N30", False),
        ("E48N27", False),
    ],
)
def test_s2_tiles_of_a_cell_match_the_sentinel2_grid(code: str, inland: bool, s2_reference: dict) -> None:
    cell = EeaCell.from_code(code)
    computed = {t.id for t in s2_tiles(cell)}
    published = _published_tiles_over(cell, s2_reference)
    assert published, code
    # every published tile is found; the computed set also holds MGRS squares the published grid
    # leaves out (sea-only tiles, west-edge squares reaching little into their zone)
    assert published <= computed, (code, sorted(published - computed))
    if inland:
        assert computed == published, (code, sorted(computed - published))
    for t in s2_tiles(cell):
        if t.id in s2_reference:
            assert (t.epsg, *t.origin) == s2_reference[t.id]


def test_s2_tiles_of_an_aoi() -> None:
    aoi = Aoi.around(16.37, 48.21, 2000)
    tiles = s2_tiles(aoi)
    assert "33UXP" in {t.id for t in tiles}
    assert mgrs_tile_at(*aoi.bbox[:2], aoi.crs).id == "33UXP"
    assert {t.id for t in s2_tiles(RolloutTile.from_code("E47N28-25K-r1c2"))} <= {
        t.id for t in s2_tiles(EeaCell.from_code("E47N28"))
    }
    for t in tiles:
        assert isinstance(t, MgrsTile)
        assert bounds_polygon(t.bounds, t.crs, aoi.crs).intersects(box(*aoi.bbox))


# --- the tiles of a layer's grid spec --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer_id", "code", "shape"),
    [
        ("clcplus-backbone-ras", "E47N28", (10_000, 10_000)),
        ("cisc-classes", "90kmE53N31", (3000, 3000)),
        ("emc-built-s-10m", "100kmE12N56", (10_000, 10_000)),
        ("emc-built-s-3ss", "10degE1N4", (12_000, 12_000)),
    ],
)
def test_layer_grid_tiles(layer_id: str, code: str, shape: tuple[int, int]) -> None:
    from landstack.catalog import get_layer
    from landstack.catalog.grid import layer_tile_by_code, layer_tiles

    _, layer = get_layer(layer_id)
    vienna = Aoi.around(16.37, 48.21, 2000)
    (tile,) = layer_tiles(layer.grid, vienna)
    assert tile.id == code and tile.grid.shape == shape
    assert layer_tile_by_code(layer.grid, code) == tile
    assert shape_of(tile).contains(shape_of_aoi(vienna))
    if layer_id.startswith("clcplus"):
        assert tile == EeaCell.from_code(code).tile(10)
    with pytest.raises(GridError, match="is not a tile code"):
        layer_tile_by_code(layer.grid, "E1N1x")


def shape_of(tile: Any) -> Any:
    return shape(tile.geometry())


def shape_of_aoi(aoi: Aoi) -> Any:
    return bounds_polygon(aoi.bbox, aoi.crs, "EPSG:4326")
