"""Assembly of a product tile: COG, attribute table and quicklook in the store, then its STAC item.

The files are written first (each atomically), the item is built from them by the catalogue's
item builder (which reads their headers and checksums back from the store and validates the item
offline) and only then written beside them, so an item never points at a missing asset.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pystac
from rasterio.crs import CRS
from rasterio.windows import Window

from landstack.catalog.grid import Tile
from landstack.catalog.items import Input, item_doc, layer_item
from landstack.pipelines.products import codes, cog, quicklook
from landstack.pipelines.products.raster import Grid
from landstack.storage import ObjectStore, layout


def tile_keys(collection_id: str, item_id: str) -> dict[str, str]:
    """Object-store keys of a product tile's item and files (beside the item, per the layout)."""
    item_key = layout.product_item_key(collection_id, item_id)
    base = posixpath.join(posixpath.dirname(item_key), item_id)
    return {
        "item": item_key,
        "data": f"{base}.tif",
        "attribute_table": f"{base}.tif.aux.xml",
        "thumbnail": f"{base}.png",
    }


def assemble(
    store: ObjectStore,
    collection_id: str,
    tile: Tile,
    data: np.ndarray | Iterable[tuple[Window, np.ndarray]],
    *,
    year: int,
    inputs: Sequence[Input] = (),
    software: Mapping[str, str] | None = None,
    properties: Mapping[str, object] | None = None,
    created: dt.datetime | None = None,
    compress: str = "DEFLATE",
    schemas_dir: str | Path | None = None,
) -> pystac.Item:
    """Write one layer tile (COG + `.aux.xml` + quicklook PNG) and its STAC item; returns the item.

    `data` is the layer's array on `tile.grid` or (window, block) pairs (e.g. from
    :func:`landstack.pipelines.products.mosaic.mosaic_blocks`), so a whole 100 km tile never has to
    be in memory.
    """
    spec = codes.layer(collection_id)
    item_id = f"{collection_id}-{tile.id}-{year}"
    keys = tile_keys(collection_id, item_id)
    grid = Grid(CRS.from_user_input(tile.grid.crs), tile.grid.transform, tile.grid.shape)
    with tempfile.TemporaryDirectory() as tmp:
        result = cog.write_cog(Path(tmp) / f"{item_id}.tif", spec, grid, data, compress=compress)
        png = quicklook.render(result.path, spec)
        files = {spec.asset_key: keys["data"], "thumbnail": keys["thumbnail"]}
        store.put_bytes(keys["thumbnail"], png)
        if result.aux_path.exists():
            store.put_file(result.aux_path, keys["attribute_table"])
            files["attribute_table"] = keys["attribute_table"]
        store.put_file(result.path, keys["data"])
    item = layer_item(
        spec,
        tile,
        files,
        year=year,
        store=store,
        item_id=item_id,
        inputs=inputs,
        software=software,
        created=created,
        properties=dict(properties or {}),
        schemas_dir=schemas_dir,
    )
    store.put_json(keys["item"], item_doc(item))
    return item
