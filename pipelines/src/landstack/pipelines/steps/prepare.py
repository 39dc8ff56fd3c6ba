"""Steps that prepare data: the synthetic Sentinel-2 archive, features for an AOI, training samples."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Literal

from pydantic import Field, model_validator

from landstack.pipelines import validate
from landstack.pipelines.steps.registry import StepInput, StepOutput, current_store, input_hash, step
from landstack.storage import layout

log = logging.getLogger("landstack.steps")

Bbox = tuple[float, float, float, float]


def _where(model: Any) -> Any:
    """Check the AOI and CRS fields the way every command does (messages name the field)."""
    for field in ("crs", "points_crs", "polygons_crs"):
        if hasattr(model, field):
            validate.check_crs(getattr(model, field), field)
    if hasattr(model, "target_crs"):
        validate.check_crs(model.target_crs, "target_crs", allow_native=True)
    validate.parse_bbox(model.bbox, model.crs, "bbox")
    return model


# --- synthetic archive -------------------------------------------------------------------------


class SynthArchiveInput(StepInput):
    """A synthetic Sentinel-2 L2A archive for an AOI and date range."""

    bbox: Bbox = Field(description="AOI [minx, miny, maxx, maxy] in `crs`")
    crs: str = "EPSG:4326"
    start: dt.date = Field(description="first acquisition date")
    end: dt.date = Field(description="last acquisition date")
    seed: int = Field(0, description="the same seed writes the same archive")
    provider: Literal["earth-search", "band-id"] = "earth-search"
    revisit_days: int = Field(5, ge=1, le=60)
    points_per_class: int = Field(100, ge=1, description="labelled sample points per class")
    prefix: str = Field(f"{layout.ARCHIVE}/synthetic", description="key prefix in the object store")

    @model_validator(mode="after")
    def _dates(self) -> SynthArchiveInput:
        _where(self)
        validate.check_key(self.prefix, "prefix")
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}; swap them")
        return self


class SynthArchiveOutput(StepOutput):
    collection_url: str = Field(description="the static STAC collection.json")
    items: int
    item_urls: list[str]
    samples_url: str = Field(description="labelled sample points (Parquet)")
    truth_urls: dict[str, str]


@step("synth-archive", SynthArchiveInput, SynthArchiveOutput)
def synth_archive(inp: SynthArchiveInput) -> SynthArchiveOutput:
    """Write a synthetic Sentinel-2 L2A archive (COGs, STAC items, collection, truth, sample points)."""
    from landstack.catalog.grid import Aoi
    from landstack.pipelines.synth import SynthConfig, write_archive

    store = current_store()
    cfg = SynthConfig(
        aoi=Aoi(inp.bbox, inp.crs),
        start=inp.start,
        end=inp.end,
        seed=inp.seed,
        provider=inp.provider,
        revisit_days=inp.revisit_days,
        points_per_class=inp.points_per_class,
    )
    result = write_archive(cfg, store, inp.prefix)
    return SynthArchiveOutput(
        collection_url=store.href(result.collection_key),
        items=len(result.item_keys),
        item_urls=[store.href(k) for k in result.item_keys],
        samples_url=store.href(result.samples_key),
        truth_urls={name: store.href(k) for name, k in result.truth_keys.items()},
    )


# --- the Sentinel-2 source of features and samples ----------------------------------------------


class SourceInput(StepInput):
    """Where the Sentinel-2 L2A items come from, the AOI and the reference year."""

    bbox: Bbox = Field(description="AOI [minx, miny, maxx, maxy] in `crs`")
    crs: str = "EPSG:4326"
    year: int = Field(ge=2015, le=2100, description="reference year; the series covers year ± 3 months")
    api_url: str | None = Field(None, description="STAC API root URL")
    catalog_url: str | None = Field(None, description="static STAC collection.json (file:// or s3://)")
    collection: str | None = Field(None, description="collection id in the STAC API (default sentinel-2-l2a)")
    max_cloud: float = Field(80.0, gt=0, le=100, description="skip acquisitions with more cloud cover (%)")
    target_crs: str = Field("EPSG:3035", description="output grid CRS, or 'native' for the items' UTM grid")

    @model_validator(mode="after")
    def _one_source(self) -> SourceInput:
        if (self.api_url is None) == (self.catalog_url is None):
            raise ValueError("give exactly one of 'api_url' (STAC API) or 'catalog_url' (static catalogue)")
        if self.api_url is not None:
            validate.check_url(self.api_url, "api_url", schemes=validate.HTTP_SCHEMES)
        if self.catalog_url is not None:
            validate.check_url(self.catalog_url, "catalog_url", schemes=validate.STORE_SCHEMES)
        _where(self)
        return self


def _stack(inp: SourceInput, bands: list[str], chunks: int = 256) -> Any:
    """The lazy (time, y, x) stack of the source's items over the AOI."""
    from landstack.catalog.grid import Aoi
    from landstack.pipelines import ingest

    return ingest.load_reference_year(
        Aoi(inp.bbox, inp.crs),
        inp.year,
        bands,
        api_url=inp.api_url,
        catalog_href=inp.catalog_url,
        collection=inp.collection,
        max_cloud=inp.max_cloud,
        crs=inp.target_crs,
        chunks=chunks,
    )


# --- features -----------------------------------------------------------------------------------


class FeaturesInput(SourceInput):
    """Features of one tile / AOI and reference year."""

    kind: Literal["timeseries", "unet"] = Field(
        "timeseries",
        description="timeseries: one 54-band GeoTIFF per feature + data_score; unet: quantiles + harmonics",
    )
    tile_id: str | None = Field(None, description="tile id, used in the default prefix")
    prefix: str | None = Field(
        None, description="output key prefix (default features/<tile_id or bbox>/<year>/<kind>)"
    )

    def output_prefix(self) -> str:
        if self.prefix:
            return self.prefix.strip("/")
        where = self.tile_id or "_".join(f"{v:g}" for v in self.bbox)
        return f"{layout.FEATURES}/{where}/{self.year}/{self.kind}"


class FeaturesOutput(StepOutput):
    asset_urls: dict[str, str] = Field(description="feature name -> GeoTIFF URL")
    urls: list[str] = Field(description="the same URLs in feature order (what training takes)")
    manifest_url: str = Field(description="JSON with the inputs and the assets")


@step("features", FeaturesInput, FeaturesOutput)
def features(inp: FeaturesInput) -> FeaturesOutput:
    """Ingest Sentinel-2 L2A for an AOI and year and write its features as GeoTIFFs."""
    from landstack.pipelines import features as feats
    from landstack.pipelines.feature_rasters import write_geotiff, write_timeseries

    store = current_store()
    prefix = inp.output_prefix()
    cfg = feats.FeatureConfig()
    if inp.kind == "timeseries":
        stack = _stack(inp, cfg.needed_bands)
        ds = feats.timeseries_features(stack, inp.year, cfg)
        hrefs = write_timeseries(ds, store, prefix)
        assets = {h.rsplit("/", 1)[-1].removesuffix(".tif"): h for h in hrefs}
    else:
        bands = list(dict.fromkeys([*cfg.quantile_bands, "B04", "B08"]))
        stack = _stack(inp, bands)
        assets = {
            "unet_inputs": write_geotiff(feats.unet_inputs(stack, cfg), store, f"{prefix}/unet_inputs.tif")
        }
    manifest = {"input": inp.model_dump(mode="json", exclude={"force"}), "assets": assets}
    manifest_url = store.put_json(f"{prefix}/features.json", manifest)
    return FeaturesOutput(asset_urls=assets, urls=list(assets.values()), manifest_url=manifest_url)


# --- samples ------------------------------------------------------------------------------------


class SamplesInput(SourceInput):
    """The training table at labelled points or polygons."""

    points_url: str | None = Field(None, description="Parquet with x, y, label[, group]")
    points_crs: str = Field("EPSG:4326", description="CRS of the point coordinates")
    polygons_url: str | None = Field(None, description="GeoJSON of labelled polygons (property 'label')")
    polygons_crs: str = "EPSG:4326"
    max_pixels_per_polygon: int | None = Field(None, ge=1)
    out: str | None = Field(
        None, description="output key in the object store (default samples/<input hash>/training.parquet)"
    )

    @model_validator(mode="after")
    def _one_label_source(self) -> SamplesInput:
        if (self.points_url is None) == (self.polygons_url is None):
            raise ValueError("give exactly one of 'points_url' or 'polygons_url'")
        return self


class SamplesOutput(StepOutput):
    table_url: str
    rows: int
    columns: int


@step("samples", SamplesInput, SamplesOutput)
def samples(inp: SamplesInput) -> SamplesOutput:
    """Extract the wide training table (series at labelled points or polygons) into Parquet."""
    from landstack.pipelines import samples as sampling
    from landstack.pipelines.features import FeatureConfig

    cfg = FeatureConfig()
    s3 = current_store().s3
    points = polygons = None
    if inp.points_url is not None:
        points = validate.read_parquet(inp.points_url, "points_url", s3, columns=("x", "y", "label"))
        validate.check_columns(
            points, f"points_url {inp.points_url!r}", numeric=("x", "y"), integer=("label",)
        )
    elif inp.polygons_url is not None:
        polygons = validate.read_geojson(
            inp.polygons_url, "polygons_url", s3, geometry_types=("Polygon", "MultiPolygon")
        )
        validate.check_feature_labels(polygons, f"polygons_url {inp.polygons_url!r}")
    stack = _stack(inp, cfg.needed_bands, chunks=512)
    points_crs = inp.points_crs
    if polygons is not None:
        points = sampling.polygon_points(
            stack, polygons, inp.polygons_crs, max_pixels_per_polygon=inp.max_pixels_per_polygon
        )
        points_crs = sampling.stack_crs(stack).to_string()
    assert points is not None
    table = sampling.extract_samples(stack, points, inp.year, points_crs=points_crs, cfg=cfg)
    out = inp.out or f"{layout.SAMPLES}/{input_hash(inp)}/training.parquet"
    href = sampling.write_table(table, current_store(), out)
    return SamplesOutput(table_url=href, rows=len(table), columns=int(table.shape[1]))
