"""The prediction item: the predictor's rasters as COGs in the store, then their STAC item.

Assets go to `predictions/<year>/<tile>/<key>.tif` first (each written atomically), the item JSON
last, so an item never names a missing asset. The item is built by the catalogue's item builder.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from pathlib import Path
from typing import Any

import rasterio

from landstack.catalog.grid import Tile
from landstack.catalog.items import Asset, build_item, file_info, item_doc, reference_period
from landstack.catalog.stac import COG_MEDIA_TYPE
from landstack.pipelines.inference.predict import Prediction
from landstack.storage import ObjectStore
from landstack.storage.layout import COLLECTIONS, PREDICTIONS

COLLECTION = "landstack-predictions"


def prediction_prefix(year: int, tile: str) -> str:
    """Key prefix of one tile's predictions."""
    return f"{PREDICTIONS}/{year}/{tile}"


def _to_cog(src: Path, dst: Path) -> None:
    from rio_cogeo.cogeo import cog_translate
    from rio_cogeo.profiles import cog_profiles

    profile = cog_profiles.get("deflate")
    profile.update(blockxsize=256, blockysize=256)
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
        cog_translate(str(src), str(dst), profile, overview_resampling="nearest", quiet=True, in_memory=False)


def _bands(path: Path) -> list[dict[str, Any]]:
    with rasterio.open(path) as ds:
        nodata = ds.nodata
        return [
            {
                "data_type": ds.dtypes[i],
                **({"nodata": "nan" if nodata != nodata else nodata} if nodata is not None else {}),
                "description": ds.descriptions[i] or f"band {i + 1}",
            }
            for i in range(ds.count)
        ]


def prediction_item(
    store: ObjectStore,
    tile: Tile,
    year: int,
    pred: Prediction,
    work: Path,
    properties: dict[str, Any] | None = None,
) -> tuple[str, dict[str, str]]:
    """Upload the prediction rasters as COGs and write their item; returns (item URL, asset URLs).

    The item (`predictions/<year>/<tile>/item.json`) has the assets `data-score`, `medians`, one per
    product family (`<family>`, or `<family>-<unit>` with production units, the pixels outside
    every unit as `<family>-fallback`) and, with units, `units` (uint16 unit index, 0 = none;
    index i is entry i - 1 of the `landstack:units` property).
    """
    prefix = prediction_prefix(year, tile.id)
    assets: dict[str, Asset] = {}
    hrefs: dict[str, str] = {}
    for key, path in pred.files.items():
        cog = work / f"{key}.cog.tif"
        _to_cog(path, cog)
        href = store.put_file(cog, f"{prefix}/{key}.tif")
        hrefs[key] = href
        fields: dict[str, Any] = {"raster:bands": _bands(cog)}
        if key in pred.models:
            fields["landstack:model"] = pred.models[key]
        assets[key] = Asset(
            href=href,
            media_type=COG_MEDIA_TYPE,
            roles=["data"],
            title=key,
            fields=fields,
            file=file_info(href, store),
        )
    start, end = reference_period(year)
    item = build_item(
        f"{COLLECTION}-{tile.id}-{year}",
        assets=assets,
        tile=tile,
        start=start,
        end=end,
        properties={
            "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "landstack:tile": tile.id,
            "landstack:reference_year": year,
            "landstack:valid_pixels": pred.valid_pixels,
            "landstack:models": dict(pred.models),
            **(properties or {}),
        },
        collection=COLLECTION,
        collection_href=posixpath.relpath(f"{COLLECTIONS}/{COLLECTION}.json", prefix),
    )
    return store.put_json(f"{prefix}/item.json", item_doc(item)), hrefs
