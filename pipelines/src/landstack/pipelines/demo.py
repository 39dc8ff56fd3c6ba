"""The demo chain (`landstack demo`, run by `make demo`): all local, ending in a running STAC API.

1. the product catalogue: a STAC collection and an INSPIRE record per layer, into the store;
2. a synthetic Sentinel-2 L2A archive (COGs, STAC items, ground truth) into the store;
3. both published into pgstac (items validated offline, assets checked first);
4. the STAC API started over pgstac;
5. the archive searched through that API and read with odc-stac; time-series features sampled at
   the labelled points into the training table;
6. a TempCNN trained and evaluated on it (random forest alongside) and put in the model registry.

Products (land cover, imperviousness, ...) join this chain as their steps land; the catalogue
already publishes every product layer's collection.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from landstack.pipelines.errors import PipelineError
from landstack.pipelines.layout import CATALOG_PREFIX, COLLECTIONS_PREFIX, MODELS_PREFIX
from landstack.pipelines.local_services import STAC_API_PORT, stac_api_service
from landstack.pipelines.settings import Settings, get_settings
from landstack.pipelines.store import ObjectStore

ARCHIVE_PREFIX = "sentinel-2/synthetic"
SAMPLES_KEY = "samples/clcplus-training.parquet"


@dataclass(frozen=True)
class DemoConfig:
    """Size of the demo: small enough for a laptop, large enough to show every step."""

    lon: float = 16.30
    lat: float = 48.20
    size_m: float = 3000.0
    reference_year: int = 2023
    seed: int = 7
    points_per_class: int = 80
    revisit_days: int = 5
    epochs: int = 20
    threads: int = 2
    api_port: int = STAC_API_PORT


@dataclass
class DemoResult:
    api_url: str
    collections: list[str] = field(default_factory=list)
    archive_items: int = 0
    training_table: str = ""
    samples: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    model_item: str = ""
    store_url: str = ""


def run_demo(
    settings: Settings | None = None, config: DemoConfig | None = None, log: Callable[[str], None] = print
) -> DemoResult:
    """Run the demo chain; returns what was published and where (the API stays running)."""
    s = settings or get_settings()
    cfg = config or DemoConfig()
    store = ObjectStore.from_settings(s)
    api_url = f"http://127.0.0.1:{cfg.api_port}"
    result = DemoResult(api_url=api_url, store_url=store.url)

    log("1/6 product catalogue: collections and INSPIRE records")
    _catalogue(store, api_url)

    log("2/6 synthetic Sentinel-2 L2A archive")
    archive = _archive(store, cfg)
    result.archive_items = len(archive.item_keys)

    log("3/6 publishing into pgstac")
    result.collections = _publish(store, s, archive.prefix)

    log("4/6 STAC API")
    stac_api_service(s, port=cfg.api_port).up(wait_seconds=90)

    log("5/6 time series through the STAC API -> training samples")
    table, result.training_table = _samples(store, s, cfg, archive, api_url)
    result.samples = len(table)

    log("6/6 TempCNN training, evaluation and registration")
    result.metrics, result.model_item = _train(store, s, cfg, result.training_table)
    return result


def _catalogue(store: ObjectStore, api_url: str) -> None:
    from landstack.catalog.build import build_catalogue

    with tempfile.TemporaryDirectory() as tmp:
        built = build_catalogue(tmp, api_url=api_url)
        for path in [*built.collections, *built.records]:
            store.put_file(path, f"{CATALOG_PREFIX}/{path.parent.name}/{path.name}")


def _archive(store: ObjectStore, cfg: DemoConfig) -> Any:
    from landstack.pipelines.synth import Aoi, SynthConfig, write_archive

    year = cfg.reference_year
    synth = SynthConfig(
        aoi=Aoi.around(cfg.lon, cfg.lat, cfg.size_m),
        start=dt.date(year - 1, 10, 1),
        end=dt.date(year + 1, 3, 31),
        seed=cfg.seed,
        revisit_days=cfg.revisit_days,
        points_per_class=cfg.points_per_class,
    )
    return write_archive(synth, store, ARCHIVE_PREFIX)


def _publish(store: ObjectStore, s: Settings, archive_prefix: str) -> list[str]:
    from landstack.pipelines.publish import PgstacTarget, publish

    target = PgstacTarget(s.pg_dsn)
    try:
        catalogue = publish(
            store, target, collections_prefix=COLLECTIONS_PREFIX, items_prefixes=[], settings=s
        )
        archive = publish(
            store,
            target,
            collections_prefix=f"{archive_prefix}/collection.json",
            items_prefixes=[f"{archive_prefix}/items"],
            settings=s,
        )
    finally:
        target.close()
    refused = [*catalogue.refused, *archive.refused]
    if refused:
        raise PipelineError(
            f"publishing refused {len(refused)} documents, first: {refused[0].id}: {refused[0].reason}"
        )
    return [*catalogue.collections, *archive.collections]


def _samples(store: ObjectStore, s: Settings, cfg: DemoConfig, archive: Any, api_url: str) -> tuple[Any, str]:
    import pandas as pd

    from landstack.pipelines import ingest, samples
    from landstack.pipelines.features import FeatureConfig
    from landstack.pipelines.synth import Aoi
    from landstack.pipelines.synth.archive import COLLECTION_ID

    year = cfg.reference_year
    aoi = Aoi.around(cfg.lon, cfg.lat, cfg.size_m)
    start, end = f"{year - 1}-10-01", f"{year + 1}-03-31"
    items = ingest.search_items(aoi, start, end, api_url=api_url, collection=COLLECTION_ID, settings=s)
    ingest.configure_gdal(s)
    features = FeatureConfig()
    stack = ingest.load_stack(items, features.needed_bands, aoi=aoi, crs="EPSG:3035", chunks=256)
    with store.open(archive.samples_key) as f:
        points = pd.read_parquet(f)
    table = samples.extract_samples(stack, points, year, points_crs=archive.scene.crs, cfg=features)
    return table, samples.write_table(table, store, SAMPLES_KEY)


def _train(store: ObjectStore, s: Settings, cfg: DemoConfig, table_href: str) -> tuple[dict[str, Any], str]:
    from landstack.models.registry import register_model
    from landstack.models.runs import RunOptions, run_tempcnn
    from landstack.models.tables import read_table
    from landstack.models.training import TrainConfig

    version = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "training.parquet"
        local.write_bytes(store.read_bytes(SAMPLES_KEY))
        options = RunOptions(
            config=TrainConfig(epochs=cfg.epochs, patience=8, threads=cfg.threads, seed=cfg.seed),
            compare_rf=True,
            rf_trees=500,
            name="tempcnn-clcplus",
            version=version,
        )
        run = run_tempcnn(read_table(local), Path(tmp) / "run", options)
        plots = [f for f in run.files if f.suffix in {".png", ".csv"}]
        registered = register_model(
            store.url,
            run.trained.model,
            run.trained.metadata,
            run.metrics,
            plots,
            s.storage_options(),
            training_data=table_href,
        )
    return run.metrics, registered.item_href


def summary(result: DemoResult) -> str:
    """What the user should look at, ending with the line `STAC API: URL`."""
    nan = float("nan")
    m = result.metrics
    oa, kappa, f1 = m.get("overall_accuracy", nan), m.get("kappa", nan), m.get("macro_f1", nan)
    rf_oa = m.get("random_forest", {}).get("overall_accuracy", nan)
    lines = [
        "",
        f"object store:        {result.store_url}",
        f"  catalogue:         {result.store_url}/{CATALOG_PREFIX}/ (collections/*.json, inspire/*.xml)",
        f"  Sentinel-2 archive: {result.store_url}/{ARCHIVE_PREFIX}/ ({result.archive_items} acquisitions)",
        f"  training table:    {result.training_table} ({result.samples} samples)",
        f"  model registry:    {result.store_url}/{MODELS_PREFIX}/ (STAC item {result.model_item})",
        f"TempCNN (held-out):  OA {oa:.3f}, kappa {kappa:.3f}, macro-F1 {f1:.3f}; RF OA {rf_oa:.3f}",
        f"published:           {len(result.collections)} collections",
        f"  {result.api_url}/collections",
        f"  {result.api_url}/collections/clcplus-backbone-ras/inspire.xml",
        f"  {result.api_url}/search?collections=sentinel-2-l2a-synthetic&limit=5",
        "stop everything with: make down",
        f"STAC API: {result.api_url}",
    ]
    return "\n".join(lines)
