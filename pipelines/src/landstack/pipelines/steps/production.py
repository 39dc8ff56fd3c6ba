"""Production steps: list the roll-out tiles of an AOI, and predict one roll-out tile.

The post-processing and assembly steps of each product family build on the predictions these
steps write (items in the `landstack-predictions` collection).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import Field

from landstack.pipelines.steps._families import FamiliesInput
from landstack.pipelines.steps.registry import StepOutput, current_store, step

log = logging.getLogger("landstack.steps")

PREDICTIONS_COLLECTION = "landstack-predictions"
# the model family behind each product family, and the asset key of its output
_DEFAULT_MODELS = {
    "clcplus-backbone": "tempcnn",
    "hrl-imperviousness": "unet-imd",
    "emc-built": "unet-built",
    "cisc": "impervious",
}

Bbox = tuple[float, float, float, float]


def _class_codes(layer_id: str) -> tuple[str, ...]:
    from landstack.catalog import get_layer

    _, layer = get_layer(layer_id)
    return tuple(str(c.value) for c in layer.classes if not c.nodata and c.value < 250)


# Classifier outputs are written on the product's classes (probability 0 for a class a model never saw).
_CLASSES = {"clcplus-backbone": _class_codes("clcplus-backbone-ras"), "cisc": _class_codes("cisc-classes")}


class ListTilesInput(FamiliesInput):
    aoi: list[float] = Field(default_factory=list, description="[minx, miny, maxx, maxy] in EPSG:4326, or []")
    tiles: list[str] = Field(
        default_factory=list, description="roll-out tile codes (E40N30-25K-r1c2); [] = from the AOI"
    )
    year: int = Field(ge=2015, le=2100)


class ListTilesOutput(StepOutput):
    tiles: list[str] = Field(description="roll-out tiles to predict")
    product_tiles: list[str] = Field(description="EEA 100 km cells the roll-out tiles feed")


@step("list-tiles", ListTilesInput, ListTilesOutput, cached=False)
def list_tiles(inp: ListTilesInput) -> ListTilesOutput:
    """The 25 km roll-out tiles of an AOI (or the given ones) and the product tiles they feed."""
    from landstack.catalog.grid import Aoi, RolloutTile, rollout_tiles
    from landstack.pipelines.errors import BadInputError

    if inp.tiles:
        tiles = [RolloutTile.from_code(t) for t in inp.tiles]
    elif len(inp.aoi) == 4:
        tiles = rollout_tiles(Aoi(tuple(inp.aoi), "EPSG:4326"))  # type: ignore[arg-type]
    else:
        raise BadInputError("list-tiles needs an AOI bbox [minx, miny, maxx, maxy] or a list of tiles")
    cells = sorted({t.cell.code for t in tiles})
    return ListTilesOutput(tiles=[t.code for t in tiles], product_tiles=cells)


class PredictInput(FamiliesInput):
    tile: str = Field(description="roll-out tile code, e.g. E40N30-25K-r1c2")
    aoi: list[float] = Field(
        default_factory=list, description="clip the tile to this EPSG:4326 bbox ([] = whole tile)"
    )
    year: int = Field(ge=2015, le=2100)
    source: str = Field(description="Sentinel-2 STAC API URL, or a static collection.json URL")
    collection: str | None = Field(None, description="collection id in the STAC API")
    models: dict[str, str] = Field(
        default_factory=dict, description="family -> registry model name[:version]"
    )
    backend: str = Field("local", description="local (in-process torch) or kserve")
    model_servers: dict[str, str] = Field(
        default_factory=dict, description="model name -> V2 endpoint URL (kserve)"
    )
    registry_url: str | None = Field(None, description="model registry root (default: the object store)")
    window: int = Field(256, ge=32, le=2048, description="pixels per window side (memory follows it)")
    halo: int = Field(64, ge=0, le=512, description="context pixels around each window for patch models")
    max_cloud: float = Field(80.0, gt=0, le=100)
    units: str | None = Field(
        None, description="URL of a GeoJSON of production-unit polygons (EPSG:3035 or a crs member)"
    )
    unit_property: str = Field("unit", description="property holding the unit id (else the feature id)")
    unit_buffer_m: float = Field(
        10_000.0, ge=0, description="each unit is predicted this far beyond its edge"
    )


class PredictOutput(StepOutput):
    item: str = Field(description="URL of the prediction item (collection landstack-predictions)")
    assets: dict[str, str]
    valid_pixels: int


def _stack(inp: PredictInput, grid: Any, block: int) -> Any:
    from landstack.pipelines.features import FeatureConfig
    from landstack.pipelines.inference.reading import reference_stack

    cfg = FeatureConfig()
    bands = list(dict.fromkeys([*cfg.needed_bands, *cfg.quantile_bands]))
    static = inp.source.endswith(".json")
    # read straight from the COGs window by window (odc-stac only where the grid needs overviews)
    return reference_stack(
        grid,
        inp.year,
        bands,
        api_url=None if static else inp.source,
        catalog_href=inp.source if static else None,
        collection=inp.collection,
        max_cloud=inp.max_cloud,
        chunks=block,
    )


def _backend(inp: PredictInput) -> Any:
    from landstack.pipelines.errors import BadInputError
    from landstack.pipelines.settings import get_settings

    settings = get_settings()
    if inp.backend == "local":
        from landstack.pipelines.inference.backends import LocalBackend

        return LocalBackend(inp.registry_url or settings.store_url, settings.s3())
    if inp.backend == "kserve":
        from landstack.pipelines.inference.served import ServedBackend

        return ServedBackend(inp.registry_url or settings.store_url, inp.model_servers, settings.s3())
    raise BadInputError(f"backend {inp.backend!r} is not known; use 'local' or 'kserve'")


def _jobs(inp: PredictInput, backend: Any, grid: Any) -> tuple[list[Any], Any]:
    """One job per family; with units, one model per unit touching the tile (and the fallback)."""
    from landstack.models.registry import list_versions
    from landstack.pipelines.inference.backends import model_ref
    from landstack.pipelines.inference.predict import Job, UnitModel
    from landstack.pipelines.inference.units import tile_units, unit_model_name
    from landstack.pipelines.settings import get_settings

    settings = get_settings()
    units = None
    if inp.units:
        units = tile_units(inp.units, grid, inp.unit_buffer_m, settings.s3(), inp.unit_property)
        registry = inp.registry_url or settings.store_url

        def registered(name: str) -> bool:
            return bool(list_versions(registry, name, settings.s3()))

    jobs = []
    for family in inp.families:
        name, version = model_ref(inp.models.get(family) or _DEFAULT_MODELS[family])
        classes = _CLASSES.get(family, ())
        if units is None:
            jobs.append(Job(family, [UnitModel("all", backend.model(name, version))], classes=classes))
            continue
        per_unit = []
        for u in units.units:
            chosen = unit_model_name(name, u.unit, registered)
            # a pinned version belongs to the named model, not to its unit variants
            per_unit.append(
                UnitModel(u.unit, backend.model(chosen, version if chosen == name else "latest"), u.area)
            )
        jobs.append(Job(family, per_unit, per_unit=True, classes=classes))
    return jobs, units


@step("predict", PredictInput, PredictOutput)
def predict(inp: PredictInput) -> PredictOutput:
    """Predict one roll-out tile with the models of each product family; write its prediction item."""
    import tempfile
    import time
    from pathlib import Path

    from landstack.catalog.grid import Aoi, RolloutTile, Tile, TileGrid
    from landstack.pipelines.inference.predict import TilePredictor, stack_block
    from landstack.pipelines.inference.publishing import prediction_item

    store = current_store()
    rollout = RolloutTile.from_code(inp.tile)
    grid = rollout.grid(10.0)
    if len(inp.aoi) == 4:
        clip = Aoi(tuple(inp.aoi), "EPSG:4326").to_crs(grid.crs)  # type: ignore[arg-type]
        x0, y0, x1, y1 = grid.bounds
        inter = (max(x0, clip[0]), max(y0, clip[1]), min(x1, clip[2]), min(y1, clip[3]))
        grid = grid.sub_grid(inter)
    backend = _backend(inp)
    stack: Any = None
    try:
        jobs, units = _jobs(inp, backend, grid)
        stack = _stack(inp, grid, stack_block(jobs, inp.window, inp.halo))
        # postprocess blends the units with the same polygons and buffer (products/blending.py)
        props = (
            {}
            if units is None
            else {
                "landstack:units": units.names,
                "landstack:unit_source": inp.units,
                "landstack:unit_buffer_m": inp.unit_buffer_m,
                "landstack:unit_property": inp.unit_property,
            }
        )
        with tempfile.TemporaryDirectory(prefix="landstack-predict-") as tmp:
            predictor = TilePredictor(stack, grid, inp.year, backend, window=inp.window, halo=inp.halo)
            pred = predictor.run(jobs, Path(tmp) / "out", None if units is None else units.index)
            tile = Tile(inp.tile, TileGrid(grid.crs, grid.transform, grid.shape))
            t0 = time.perf_counter()
            item, assets = prediction_item(store, tile, inp.year, pred, Path(tmp), props)
            log.info(
                "tile %s: %s s per stage, %.1f s COGs + item",
                inp.tile,
                {k: round(v, 1) for k, v in pred.seconds.items()},
                time.perf_counter() - t0,
            )
    finally:
        if hasattr(stack, "close"):
            stack.close()  # the direct reader holds every asset of the year open
        if hasattr(backend, "close"):
            backend.close()
    return PredictOutput(item=item, assets=assets, valid_pixels=pred.valid_pixels)
