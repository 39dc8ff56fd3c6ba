"""The `assemble` step's work: a year's intermediates into the layers of one product tile.

The product tile is an EEA 100 km cell. Its 10 m EPSG:3035 layers are mosaicked block by block
onto the cell's grid, clipped to the part the intermediates cover; the EMC-BUILT layers are
reprojected from the 10 m S/NRES/greenness onto World Mollweide and WGS84 grids covering the same
part, block by block (:mod:`products.emc_blocks`: each target block reads only the 10 m window
under it), so each of those layers' tiles is named after the cell it was made from.

The CISC layers have their own grid (90 km tiles), whose tiles straddle EEA cells. Such a tile is
made from every roll-out tile of the year that intersects it, whichever cell those lie in, and by
one cell only: the lowest (E, then N) cell holding one of those roll-out tiles. The assembly of
any other cell leaves the tile alone, so no cell replaces another's part of it, and the tile is
written once, by an assembly that runs after every post-processing of the run.

Known limit: greenness is computed per roll-out tile, so its 300 m neighbourhood stops at roll-out
tile borders.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rasterio
from rasterio.crs import CRS

from landstack.catalog.grid import Aoi, EeaCell, GridError, Tile, TileGrid, crs_code, layer_tiles
from landstack.catalog.items import Input
from landstack.pipelines.errors import BadInputError
from landstack.pipelines.products import codes, emc_blocks, mosaic
from landstack.pipelines.products.assemble import assemble, tile_keys
from landstack.pipelines.products.intermediates import EMC_LAYERS, FAMILY_LAYERS, SPEC_LAYERS
from landstack.pipelines.products.raster import Grid
from landstack.pipelines.steps._postprocess import item_grid
from landstack.storage import ObjectStore, gdal_env
from landstack.storage.layout import INTERMEDIATES

if TYPE_CHECKING:
    from landstack.pipelines.steps.products import AssembleInput

log = logging.getLogger("landstack.steps")

Bounds = tuple[float, float, float, float]
GDAL_CACHE_MB = 64  # GDAL's block cache while EMC-BUILT layers are staged and delivered


def _intersection(a: Bounds, b: Bounds) -> Bounds | None:
    out = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return out if out[0] < out[2] and out[1] < out[3] else None


Found = list[tuple[str, dict[str, Any]]]


def _all_intermediates(store: ObjectStore, year: int) -> Found:
    """(URL, item) of every intermediates item of `year`, sorted by item id."""
    out = [
        (store.href(k), dict(store.read_json(k))) for k in store.list(f"{INTERMEDIATES}/{year}/", "item.json")
    ]
    return sorted(out, key=lambda x: str(x[1]["id"]))


def _within(found: Found, bounds: Bounds) -> Found:
    return [(url, doc) for url, doc in found if _intersection(item_grid(doc).bounds, bounds)]


def intermediates_in(store: ObjectStore, year: int, bounds: Bounds) -> Found:
    """(URL, item) of every intermediates item of `year` whose tile intersects `bounds` (EPSG:3035)."""
    return _within(_all_intermediates(store, year), bounds)


def _cell_of(doc: dict[str, Any]) -> EeaCell:
    """The EEA cell a roll-out tile's item lies in (roll-out tiles nest in cells)."""
    x0, y0, x1, y1 = item_grid(doc).bounds
    return EeaCell.at((x0 + x1) / 2, (y0 + y1) / 2)


def _own_tiles(
    cell: EeaCell, name: str, spec_grid: Any, covered: Bounds, everything: Found
) -> list[tuple[Tile, Found]]:
    """The tiles of layer `name`'s own grid that `cell` assembles, each with every item feeding it.

    A tile straddling several cells belongs to the lowest cell holding one of its inputs (items
    with that layer), so it is made once, from all of them, and never overwritten with one cell's part.
    """
    out = []
    for t in layer_tiles(spec_grid, Aoi(covered, "EPSG:3035")):
        feeding = [(u, d) for u, d in _within(everything, t.grid.bounds) if name in d.get("assets", {})]
        if not feeding:
            continue
        owner = min(_cell_of(doc) for _, doc in feeding)
        if owner != cell:
            log.info("%s is assembled with cell %s, which holds part of its inputs", t.id, owner.code)
            continue
        part = _intersection(t.grid.bounds, _union([item_grid(doc) for _, doc in feeding]))
        assert part is not None  # every feeding item intersects the tile
        out.append((Tile(t.id, t.grid.sub_grid(part)), feeding))
    return out


def _union(grids: list[TileGrid]) -> Bounds:
    b = [g.bounds for g in grids]
    return (min(x[0] for x in b), min(x[1] for x in b), max(x[2] for x in b), max(x[3] for x in b))


def _grid(tile: TileGrid) -> Grid:
    return Grid(CRS.from_user_input(tile.crs), tile.transform, tile.shape)


def _sources(found: list[tuple[str, dict[str, Any]]], name: str) -> list[str]:
    return [doc["assets"][name]["href"] for _, doc in found if name in doc["assets"]]


def _stage_emc(
    store: ObjectStore, emc: dict[str, list[str]], grid10: TileGrid, work: Path, chunk: int
) -> dict[str, tuple[Path, Grid]]:
    """Every EMC-BUILT layer staged block by block from the 10 m intermediates (first source with
    data wins); a block spans about `chunk` source pixels, rounded to whole 1 km cells."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(gdal_env(store.s3))
        sources = {
            n.removeprefix("emc-"): [stack.enter_context(rasterio.open(url)) for url in urls]
            for n, urls in emc.items()
        }
        reader = emc_blocks.mosaic_reader(sources, _grid(grid10))
        return emc_blocks.stage_products(reader, _grid(grid10), work, max(100, chunk // 100 * 100))


def run(store: ObjectStore, inp: AssembleInput) -> list[str]:
    """Assemble every layer of the requested families on one product tile; returns the item URLs."""
    try:
        cell = EeaCell.from_code(inp.product_tile)
    except GridError as e:
        raise BadInputError(f"field 'product_tile': {e}") from e
    everything = _all_intermediates(store, inp.year)
    found = _within(everything, cell.bounds)
    if not found:
        raise BadInputError(
            f"field 'product_tile': no post-processed roll-out tile of {inp.year} lies in {cell.code} "
            f"(nothing under {INTERMEDIATES}/{inp.year}/); run postprocess for its roll-out tiles first"
        )
    covered = _intersection(_union([item_grid(doc) for _, doc in found]), cell.bounds)
    assert covered is not None  # every found item intersects the cell
    grid10 = cell.grid(10.0).sub_grid(covered)
    s3 = store.s3
    urls: list[str] = []

    def deliver(layer_id: str, tile: Tile, data: Any, items: Found | None = None) -> None:
        """Write one layer tile made from `items` (default: the cell's intermediates)."""
        inputs = [Input(str(doc["id"]), url) for url, doc in (found if items is None else items)]
        item = assemble(store, layer_id, tile, data, year=inp.year, inputs=inputs)
        urls.append(store.href(tile_keys(layer_id, item.id)["item"]))

    for family in inp.families:
        names = FAMILY_LAYERS[family]
        if family == "emc-built":
            emc = {n: _sources(found, n) for n in EMC_LAYERS}
            if not all(emc.values()):
                log.warning("no EMC-BUILT intermediates in %s %d; skipping the family", cell.code, inp.year)
                continue
            with (
                tempfile.TemporaryDirectory(prefix="emc-") as tmp,
                # GDAL's block cache (5 % of RAM by default) would otherwise follow the cell
                store.gdal_env(GDAL_CACHEMAX=GDAL_CACHE_MB),
            ):
                staged = _stage_emc(store, emc, grid10, Path(tmp), inp.chunk)
                for layer_id, (path, g) in staged.items():
                    tile = Tile(cell.code, TileGrid(crs_code(g.crs), g.transform, g.shape))
                    deliver(layer_id, tile, emc_blocks.read_back(path, inp.chunk))
            continue
        for name in names:
            sources = _sources(found, name)
            if not sources:
                log.info("no %s intermediates in %s %d; layer skipped", name, cell.code, inp.year)
                continue
            spec = codes.layer(SPEC_LAYERS[name])
            if family == "cisc":
                # a roll-out tile's "Invalid" at a shared 30 m pixel yields to its neighbour's data
                weak = [codes.code(spec, "Invalid")] if name == "cisc-valid-mask" else []
                for tile, feeding in _own_tiles(cell, name, spec.grid, covered, everything):
                    blocks = mosaic.mosaic_blocks(
                        _sources(feeding, name), _grid(tile.grid), spec, inp.chunk, s3, weak
                    )
                    deliver(spec.id, tile, blocks, feeding)
            else:
                blocks = mosaic.mosaic_blocks(sources, _grid(grid10), spec, inp.chunk, s3)
                deliver(spec.id, Tile(cell.code, grid10), blocks)
    return urls
