"""The `postprocess` step's work: a prediction item in, the roll-out tile's final layers out.

Reads the prediction COGs of one tile, runs each family's production order (see
:mod:`landstack.pipelines.products`) and writes the results to ``intermediates/<year>/<tile>/``:
the layers on the catalogue's specs (RAS, RASCL, RASDL, RASPL, IMD, sealing mask, change, CISC
classes and valid mask) plus what later steps need (the CLCplus input probabilities for next
year's calibration; S, NRES and greenness on the 10 m EPSG:3035 tile, reprojected at assembly).
The item is written last, so it never names a missing file.

Memory follows the block size (`parameters.block`), not the tile: inputs are read window by window
from the store's COGs, each family runs block by block (with the halos its neighbourhood
operations need, and the CLCplus change thresholds from a first pass), and every output is written
block by block into a tiled staging GeoTIFF on local disk, then copied into its COG and uploaded.
The machinery is library code: :mod:`~landstack.pipelines.products.staging` (windowed reads,
staged layers), :mod:`~landstack.pipelines.products.clcplus_tile` and
:mod:`~landstack.pipelines.products.intermediates` (the families' block drivers); this module
reads the prediction item, runs the requested families and writes the intermediates item.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from affine import Affine

from landstack.catalog.grid import Tile, TileGrid
from landstack.catalog.items import (
    Input,
    build_item,
    collection_href_for,
    item_doc,
    reference_period,
)
from landstack.pipelines.errors import BadInputError
from landstack.pipelines.products.clcplus_tile import write_clcplus
from landstack.pipelines.products.intermediates import (
    PROBABILITIES,
    SPEC_LAYERS,
    TileContext,
    family_assets,
    write_cisc,
    write_emc,
    write_hrl,
)
from landstack.pipelines.products.staging import LayerWriter, StoreRasters
from landstack.pipelines.products.windowed import RasterView
from landstack.storage import ObjectStore
from landstack.storage.errors import StoreError
from landstack.storage.layout import INTERMEDIATES

if TYPE_CHECKING:
    from landstack.pipelines.steps.products import PostprocessInput

log = logging.getLogger("landstack.steps")

COLLECTION = "landstack-intermediates"
GDAL_CACHE_MB = 64  # GDAL's block cache while the step runs: memory must not follow the tile


def intermediate_prefix(year: int, tile: str) -> str:
    """Key prefix of one roll-out tile's post-processed layers."""
    return f"{INTERMEDIATES}/{year}/{tile}"


def intermediate_item_key(year: int, tile: str) -> str:
    """Key of one roll-out tile's intermediates item."""
    return f"{intermediate_prefix(year, tile)}/item.json"


def item_grid(doc: dict[str, Any]) -> TileGrid:
    """The grid an item's projection fields describe."""
    props = doc.get("properties", {})
    try:
        t = props["proj:transform"]
        return TileGrid(str(props["proj:code"]), Affine(*t[:6]), tuple(props["proj:shape"]))
    except (KeyError, TypeError) as e:
        raise BadInputError(
            f"item {doc.get('id')!r} lacks projection fields (proj:code, proj:shape, proj:transform): {e}; "
            "give an item written by the predict or postprocess step"
        ) from e


def _read_item(store: ObjectStore, url: str, field: str) -> dict[str, Any]:
    try:
        key = store.key_of(url)
        if not store.exists(key):
            raise StoreError(f"{url} does not exist")
        return dict(store.read_json(key))
    except (StoreError, ValueError) as e:
        raise BadInputError(
            f"field '{field}': no readable item at {url} ({e}); give the URL the predict step returned"
        ) from e


def _previous(store: ObjectStore, year: int, tile: str) -> dict[str, Any] | None:
    key = intermediate_item_key(year, tile)
    if not year or not store.exists(key):
        if year:
            log.info("no post-processed layers of %d for tile %s: no interannual calibration", year, tile)
        return None
    return dict(store.read_json(key))


def run(store: ObjectStore, inp: PostprocessInput) -> tuple[str, dict[str, str]]:
    """Post-process one prediction item; returns (intermediates item URL, layer name -> URL)."""
    from landstack.pipelines.settings import get_settings

    doc = _read_item(store, inp.prediction, "prediction")
    props = doc.get("properties", {})
    tile_id, year = props.get("landstack:tile"), props.get("landstack:reference_year")
    if not tile_id or not year:
        raise BadInputError(
            f"field 'prediction': item {doc.get('id')!r} has no landstack:tile / landstack:reference_year; "
            "give a prediction item written by the predict step"
        )
    if inp.previous_year and inp.previous_year >= int(year):
        raise BadInputError(
            f"field 'previous_year': {inp.previous_year} is not before the prediction's year {year}; "
            "give an earlier reference year or 0"
        )
    missing = [f for f in inp.families if not family_assets(doc, f)]
    if missing or "data-score" not in doc.get("assets", {}):
        raise BadInputError(
            f"field 'families': prediction item {doc.get('id')!r} has no assets for "
            f"{missing or ['data-score']} "
            f"(it has {sorted(doc.get('assets', {}))}); predict those families or drop them from families"
        )
    grid = item_grid(doc)
    assets = doc["assets"]
    p, s3 = inp.parameters, get_settings().s3()
    prev_doc = _previous(store, inp.previous_year, tile_id)
    prev_assets = (prev_doc or {}).get("assets", {})
    inputs = [Input(str(doc["id"]), inp.prediction)]
    if prev_doc:
        inputs.append(
            Input(str(prev_doc["id"]), store.href(intermediate_item_key(inp.previous_year, tile_id)))
        )
    properties: dict[str, Any] = {
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "landstack:tile": tile_id,
        "landstack:reference_year": int(year),
        "landstack:families": list(inp.families),
        "landstack:previous_year": inp.previous_year if prev_doc else 0,
        "landstack:parameters": p.model_dump(mode="json"),
    }
    with (
        tempfile.TemporaryDirectory(prefix="landstack-postprocess-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        # GDAL's block cache would otherwise hold whole staging files (it defaults to 5 % of RAM)
        stack.enter_context(store.gdal_env(GDAL_CACHEMAX=GDAL_CACHE_MB))
        work = Path(tmp)
        rasters = StoreRasters(store, stack)
        out = LayerWriter(store, intermediate_prefix(int(year), tile_id), work, grid, SPEC_LAYERS)
        score = rasters.band(assets["data-score"]["href"], "data-score")
        ctx = TileContext(p, grid, score, s3, rasters, out)
        if "clcplus-backbone" in inp.families:
            prev = (
                RasterView(rasters.open(prev_assets[PROBABILITIES]["href"], PROBABILITIES)[0])
                if PROBABILITIES in prev_assets
                else None
            )
            thresholds, blended = write_clcplus(ctx, doc, prev, work)
            properties["landstack:calibrated"] = prev is not None
            properties["landstack:change_thresholds"] = {f"{a}->{b}": t for (a, b), t in thresholds.items()}
            properties["landstack:blended_units"] = blended
        if "hrl-imperviousness" in inp.families:
            write_hrl(ctx, doc, prev_assets)
        if "emc-built" in inp.families:
            write_emc(ctx, doc)
        if "cisc" in inp.families:
            write_cisc(ctx, doc)
        start, end = reference_period(int(year))
        item_id = f"{COLLECTION}-{tile_id}-{year}"
        item = build_item(
            item_id,
            assets=out.assets,
            tile=Tile(tile_id, grid),
            start=start,
            end=end,
            properties=properties,
            collection=COLLECTION,
            collection_href=collection_href_for(COLLECTION, item_id),
            inputs=inputs,
        )
        url = store.put_json(intermediate_item_key(int(year), tile_id), item_doc(item))
    return url, out.urls
