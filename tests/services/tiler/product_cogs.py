"""Small real product COGs and their items, laid out as the production chain publishes them.

The chain does not assemble product COGs yet, so tests make their own: EPSG:3035 COGs of a
land-cover layer (class codes with the catalogue's palette, a nodata strip) and of an IMD layer
(0-100 %), two adjacent tiles per year, written under `<store>/products/<collection>/<item>/`
with the item JSON beside them. Items come from the catalogue's item builder
(`landstack.catalog.items.layer_item`); `product_item` is a minimal stand-in kept for where the
builder is unavailable. Loaded by conftests with importlib (tests are not a package).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds, transform_geom

from landstack.catalog import get_layer
from landstack.catalog.stac import EXT, data_asset
from landstack.catalog.symbology import colormap

LAND_COVER = "clcplus-backbone-ras"
IMD = "hrl-imperviousness-imd"
SIZE = 256  # pixels per tile edge (10 m: 2.56 km)
BLOCK = 16


def land_cover(year: int, tile: int) -> np.ndarray:
    """Class codes in 16-pixel blocks (every class 1..11), a nodata strip at the bottom."""
    bi, bj = np.indices((SIZE, SIZE)) // BLOCK
    data = (1 + (bi + bj + tile) % 11).astype("uint8")
    if year > 2018:
        data[(bi % 4 == 0) & (bj % 4 == 0)] = 1  # newly sealed blocks in the later year
    data[-8:, :] = 255
    return data


def imperviousness(year: int, tile: int) -> np.ndarray:
    """IMD % rising across the tile (0..100), shifted per year, a nodata strip at the bottom."""
    r, c = np.indices((SIZE, SIZE))
    data = ((r + c + 7 * tile + (10 if year > 2018 else 0)) % 101).astype("uint8")
    data[-8:, :] = 255
    return data


def write_cog(path: Path, data: np.ndarray, x0: float, y0: float, collection_id: str) -> None:
    """A COG in EPSG:3035 at 10 m with the layer's nodata and palette."""
    _, layer = get_layer(collection_id)
    profile = {
        "driver": "COG",
        "width": SIZE,
        "height": SIZE,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:3035",
        "transform": Affine(10.0, 0.0, x0, 0.0, -10.0, y0),
        "nodata": layer.nodata,
        "blocksize": 128,
        "overview_resampling": "nearest",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
        ds.write_colormap(1, colormap(layer))


def product_item(
    collection_id: str, item_id: str, href: str, year: int, x0: float, y0: float
) -> dict[str, Any]:
    """A product item of one tile (footprint in WGS84, projection fields of the grid)."""
    _, layer = get_layer(collection_id)
    x1, y1 = x0 + SIZE * 10.0, y0 - SIZE * 10.0
    box = {"type": "Polygon", "coordinates": [[[x0, y1], [x1, y1], [x1, y0], [x0, y0], [x0, y1]]]}
    exts = [EXT["raster"], EXT["projection"], EXT["file"]]
    if layer.classes:
        exts.insert(0, EXT["classification"])
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": exts,
        "id": item_id,
        "collection": collection_id,
        "geometry": transform_geom("EPSG:3035", "EPSG:4326", box),
        "bbox": list(transform_bounds("EPSG:3035", "EPSG:4326", x0, y1, x1, y0, densify_pts=21)),
        "properties": {
            "datetime": f"{year}-07-01T00:00:00Z",
            "start_datetime": f"{year}-01-01T00:00:00Z",
            "end_datetime": f"{year}-12-31T23:59:59Z",
            "proj:code": "EPSG:3035",
            "proj:shape": [SIZE, SIZE],
            "proj:transform": [10.0, 0.0, x0, 0.0, -10.0, y0],
        },
        "links": [
            {
                "rel": "collection",
                "href": f"../../../catalog/collections/{collection_id}.json",
                "type": "application/json",
            }
        ],
        "assets": {layer.asset_key: {"href": href, **data_asset(layer)}},
    }


def item_for(
    store_root: Path, collection_id: str, item_id: str, key: str, year: int, x0: float, y0: float
) -> dict[str, Any]:
    """The item of a COG at `key` in the store, from the catalogue's item builder when it exists."""
    try:
        from landstack.catalog.grid import Tile, TileGrid
        from landstack.catalog.items import item_doc, layer_item
    except ImportError:
        return product_item(collection_id, item_id, (store_root / key).as_uri(), year, x0, y0)
    from landstack.storage import ObjectStore

    grid = TileGrid("EPSG:3035", Affine(10.0, 0.0, x0, 0.0, -10.0, y0), (SIZE, SIZE))
    item = layer_item(
        collection_id,
        Tile(item_id, grid),
        {get_layer(collection_id)[1].asset_key: key},
        year=year,
        store=ObjectStore(store_root.as_uri()),
        item_id=item_id,
        validate=False,  # publishing validates, against ../shared's schemas where present
    )
    return dict(item_doc(item))


def write_products(
    store_root: Path,
    origin: tuple[float, float] = (4_321_000.0, 3_210_000.0),
    collections: tuple[str, ...] = (LAND_COVER, IMD),
    years: tuple[int, ...] = (2018, 2021),
) -> list[dict[str, Any]]:
    """COGs + item JSONs for each collection, year and two adjacent tiles; returns the items."""
    items = []
    for cid in collections:
        make = land_cover if cid == LAND_COVER else imperviousness
        _, layer = get_layer(cid)
        for year in years:
            for tile in (0, 1):
                x0, y0 = origin[0] + tile * SIZE * 10.0, origin[1]
                iid = f"{cid}-{year}-t{tile}"
                folder = store_root / "products" / cid / iid
                cog = folder / f"{layer.asset_key}.tif"
                write_cog(cog, make(year, tile), x0, y0, cid)
                item = item_for(store_root, cid, iid, cog.relative_to(store_root).as_posix(), year, x0, y0)
                (folder / f"{iid}.json").write_text(json.dumps(item))
                items.append(item)
    return items
