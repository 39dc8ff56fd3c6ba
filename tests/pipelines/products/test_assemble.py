"""Assembly of product tiles into the store: files first, then a valid STAC item pointing at them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine

from landstack.catalog.grid import EeaCell, Tile, TileGrid
from landstack.catalog.items import Input
from landstack.pipelines.products import assemble, clcplus, codes, mosaic
from landstack.pipelines.products.raster import Grid
from landstack.storage import ObjectStore


def _small_tile() -> Tile:
    cell = EeaCell.from_code("E40N30")
    left, _, _, top = cell.bounds
    return Tile("E40N30", TileGrid("EPSG:3035", Affine(10, 0, left, 0, -10, top), (600, 600)))


def test_assemble_clcplus_layers_writes_files_then_a_valid_item(tmp_path: Path, schemas) -> None:  # type: ignore[no-untyped-def]
    store = ObjectStore((tmp_path / "store").as_uri())
    tile = _small_tile()
    rng = np.random.default_rng(0)
    raw = rng.random((11, 600, 600)) ** 6
    enc = clcplus.encode_probabilities((raw / raw.sum(0)).astype(np.float32), np.ones((600, 600), bool))
    layers = clcplus.clcplus_layers(enc, rng.integers(0, 120, (600, 600)))
    for cid, arr in (
        (codes.CLCPLUS_RAS, layers.ras),
        (codes.CLCPLUS_RASCL, layers.rascl),
        (codes.CLCPLUS_RASDL, layers.rasdl),
        (codes.CLCPLUS_RASPL, layers.raspl),
    ):
        item = assemble.assemble(store, cid, tile, arr, year=2023, inputs=[Input("pred-E40N30-2023")])
        keys = assemble.tile_keys(cid, item.id)
        assert store.exists(keys["item"]) and store.exists(keys["data"]) and store.exists(keys["thumbnail"])
        doc = store.read_json(keys["item"])
        assert doc["id"] == f"{cid}-E40N30-2023" and doc["collection"] == cid
        spec = codes.layer(cid)
        assert set(doc["assets"]) >= {spec.asset_key, "thumbnail"}
        assert doc["assets"][spec.asset_key]["file:checksum"].startswith("1220")
        assert doc["properties"]["landstack:inputs"] == ["pred-E40N30-2023"]
        assert "processing:lineage" in doc["properties"]
        assert schemas.validate_stac(doc) == []


def test_assemble_from_mosaic_blocks(tmp_path: Path, schemas) -> None:  # type: ignore[no-untyped-def]
    import rasterio

    store = ObjectStore((tmp_path / "store").as_uri())
    tile = _small_tile()
    spec = codes.layer(codes.CISC_CLASSES)
    left, _, _, top = tile.grid.bounds
    src = tmp_path / "rollout.tif"
    with rasterio.open(
        src,
        "w",
        driver="GTiff",
        width=300,
        height=300,
        count=1,
        dtype="uint8",
        crs="EPSG:3035",
        transform=Affine(10, 0, left, 0, -10, top),
        nodata=255,
    ) as dst:
        dst.write(np.full((300, 300), 1, np.uint8), 1)
    grid30 = TileGrid("EPSG:3035", Affine(30, 0, left, 0, -30, top), (200, 200))
    t30 = Tile("E40N30", grid30)
    g = Grid(rasterio.crs.CRS.from_epsg(3035), grid30.transform, grid30.shape)
    item = assemble.assemble(store, spec.id, t30, mosaic.mosaic_blocks([str(src)], g, spec, 64), year=2022)
    with rasterio.open(store.path(assemble.tile_keys(spec.id, item.id)["data"])) as ds:
        arr = ds.read(1)
    assert (arr[:100, :100] == 1).all() and (arr[100:, :] == 255).all()
