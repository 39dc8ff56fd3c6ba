"""The `assemble` step's work: a year's intermediates into the layers of one product tile.

The product tile is an EEA 100 km cell. Its 10 m EPSG:3035 layers are mosaicked block by block
onto the cell's grid, clipped to the part the intermediates cover; the CISC layers go onto the
CISC grid's 90 km tiles (clipped the same way); the EMC-BUILT layers are reprojected from the
mosaicked 10 m S/NRES/greenness onto World Mollweide and WGS84 grids covering the same part, so
each of those layers' tiles is named after the cell it was made from.

Known limits: a CISC 90 km tile that straddles two EEA cells is written once per cell (the second
assembly replaces the first with its own part); greenness is computed per roll-out tile, so its
300 m neighbourhood stops at roll-out tile borders.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.windows import Window

from landstack.catalog.grid import Aoi, EeaCell, GridError, Tile, TileGrid, crs_code, layer_tiles
from landstack.catalog.items import Input
from landstack.pipelines.errors import BadInputError
from landstack.pipelines.products import codes, emc_built, mosaic
from landstack.pipelines.products.assemble import assemble, tile_keys
from landstack.pipelines.products.raster import Grid
from landstack.pipelines.steps._postprocess import EMC_LAYERS, FAMILY_LAYERS, SPEC_LAYERS, item_grid
from landstack.storage import ObjectStore, gdal_env
from landstack.storage.layout import INTERMEDIATES

if TYPE_CHECKING:
    from landstack.pipelines.steps.products import AssembleInput

log = logging.getLogger("landstack.steps")

Bounds = tuple[float, float, float, float]


def _intersection(a: Bounds, b: Bounds) -> Bounds | None:
    out = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return out if out[0] < out[2] and out[1] < out[3] else None


def intermediates_in(store: ObjectStore, year: int, bounds: Bounds) -> list[tuple[str, dict[str, Any]]]:
    """(URL, item) of every intermediates item of `year` whose tile intersects `bounds` (EPSG:3035)."""
    out = []
    for key in store.list(f"{INTERMEDIATES}/{year}/", suffix="item.json"):
        doc = dict(store.read_json(key))
        if _intersection(item_grid(doc).bounds, bounds):
            out.append((store.href(key), doc))
    return sorted(out, key=lambda x: str(x[1]["id"]))


def _union(grids: list[TileGrid]) -> Bounds:
    b = [g.bounds for g in grids]
    return (min(x[0] for x in b), min(x[1] for x in b), max(x[2] for x in b), max(x[3] for x in b))


def _grid(tile: TileGrid) -> Grid:
    return Grid(CRS.from_user_input(tile.crs), tile.transform, tile.shape)


def _sources(found: list[tuple[str, dict[str, Any]]], name: str) -> list[str]:
    return [doc["assets"][name]["href"] for _, doc in found if name in doc["assets"]]


def _read_float(store: ObjectStore, sources: list[str], grid: TileGrid) -> np.ndarray:
    """The float32 mosaic of 10 m sources on `grid` (first source with data wins), NaN elsewhere."""
    out = np.full(grid.shape, np.nan, np.float32)
    t = grid.transform
    with gdal_env(store.s3):
        for url in sources:
            with rasterio.open(url) as src:
                st = src.transform
                win = Window(round((t.c - st.c) / st.a), round((t.f - st.f) / st.e), grid.width, grid.height)
                block = src.read(1, window=win, boundless=True, fill_value=np.nan, out_dtype=np.float32)
            fill = np.isnan(out) & np.isfinite(block)
            out[fill] = block[fill]
    return out


def run(store: ObjectStore, inp: AssembleInput) -> list[str]:
    """Assemble every layer of the requested families on one product tile; returns the item URLs."""
    try:
        cell = EeaCell.from_code(inp.product_tile)
    except GridError as e:
        raise BadInputError(f"field 'product_tile': {e}") from e
    found = intermediates_in(store, inp.year, cell.bounds)
    if not found:
        raise BadInputError(
            f"field 'product_tile': no post-processed roll-out tile of {inp.year} lies in {cell.code} "
            f"(nothing under {INTERMEDIATES}/{inp.year}/); run postprocess for its roll-out tiles first"
        )
    covered = _intersection(_union([item_grid(doc) for _, doc in found]), cell.bounds)
    assert covered is not None  # every found item intersects the cell
    grid10 = cell.grid(10.0).sub_grid(covered)
    inputs = [Input(str(doc["id"]), url) for url, doc in found]
    s3 = store.s3
    urls: list[str] = []

    def deliver(layer_id: str, tile: Tile, data: Any) -> None:
        item = assemble(store, layer_id, tile, data, year=inp.year, inputs=inputs)
        urls.append(store.href(tile_keys(layer_id, item.id)["item"]))

    for family in inp.families:
        names = FAMILY_LAYERS[family]
        if family == "emc-built":
            emc = {n: _sources(found, n) for n in EMC_LAYERS}
            if not all(emc.values()):
                log.warning("no EMC-BUILT intermediates in %s %d; skipping the family", cell.code, inp.year)
                continue
            layers10 = {n.removeprefix("emc-"): _read_float(store, s, grid10) for n, s in emc.items()}
            for layer_id, (values, g) in emc_built.emc_products(
                layers10, grid10.crs, grid10.transform
            ).items():
                deliver(layer_id, Tile(cell.code, TileGrid(crs_code(g.crs), g.transform, g.shape)), values)
            continue
        for name in names:
            sources = _sources(found, name)
            if not sources:
                log.info("no %s intermediates in %s %d; layer skipped", name, cell.code, inp.year)
                continue
            spec = codes.layer(SPEC_LAYERS[name])
            if family == "cisc":
                tiles = layer_tiles(spec.grid, Aoi(covered, "EPSG:3035"))
                for t in tiles:
                    part = _intersection(t.grid.bounds, covered)
                    if part is None:
                        continue
                    sub = t.grid.sub_grid(part)
                    blocks = mosaic.mosaic_blocks(sources, _grid(sub), spec, inp.chunk, s3)
                    deliver(spec.id, Tile(t.id, sub), blocks)
            else:
                blocks = mosaic.mosaic_blocks(sources, _grid(grid10), spec, inp.chunk, s3)
                deliver(spec.id, Tile(cell.code, grid10), blocks)
    return urls
