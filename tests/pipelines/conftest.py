"""Fixtures of the pipeline tests: a small synthetic Sentinel-2 archive shared by the modules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from landstack.pipelines.synth import Aoi, SynthConfig, SynthResult, write_archive
from landstack.storage import ObjectStore

# About 1.2 km x 1.2 km near Vienna (UTM 33N); a year and a half of acquisitions every 15 days.
SMALL_AOI = Aoi.around(16.3, 48.2, 1200)
REFERENCE_YEAR = 2023


@pytest.fixture(scope="session")
def s2_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[ObjectStore, SynthResult, SynthConfig]:
    """A synthetic archive (earth-search asset names) in a file:// store."""
    root: Path = tmp_path_factory.mktemp("s2store")
    store = ObjectStore(root.as_uri())
    cfg = SynthConfig(
        aoi=SMALL_AOI,
        start=dt.date(2022, 10, 1),
        end=dt.date(2024, 3, 31),
        seed=11,
        revisit_days=15,
        points_per_class=12,
    )
    return store, write_archive(cfg, store, "archive"), cfg


def register_tiny_models(registry: str, tempcnn_names: tuple[str, ...] = ("tempcnn",)) -> None:
    """Tiny (1 epoch, few filters) registered models of the three families for the predict tests:
    TempCNN(s) under `tempcnn_names`, a U-Net regressor `unet-imd`, an impervious CNN `impervious`."""
    import numpy as np

    from landstack.models.fitting import fit_patch_model, fit_tempcnn
    from landstack.models.patches import PatchSet
    from landstack.models.registry import register_model
    from landstack.models.tables import SampleTable
    from landstack.models.training import TrainConfig
    from landstack.pipelines.features import FeatureConfig, unet_features

    rng = np.random.default_rng(0)
    cfg = FeatureConfig()
    cfg_t = TrainConfig(epochs=1, batch_size=64, seed=0, threads=1)
    table = SampleTable(
        x=rng.normal(0.2, 0.1, (200, len(cfg.names), 54)).astype(np.float32),
        labels=rng.integers(1, 12, 200),
        features=cfg.names,
        time_steps=54,
    )
    for name in tempcnn_names:
        t = fit_tempcnn(table, cfg_t, hyperparameters={"filters": 8, "dense": 16}, name=name, version="1")
        register_model(registry, t.model, t.metadata)
    probe = {b: np.ones((3, 1), np.uint16) for b in ("B02", "B03", "B04", "B08", "B11", "B12")}
    _, names = unet_features(probe, np.full((3, 1), 4, np.uint8), np.zeros(3), np.arange(3.0), cfg)
    x = rng.normal(0, 1, (8, len(names), 32, 32)).astype(np.float32)
    imd = PatchSet(x, rng.uniform(0, 100, (8, 1, 32, 32)).astype(np.float32), names, ["imd"])
    u = fit_patch_model(imd, cfg_t, "UNet", {"width": 8, "depth": 2}, name="unet-imd", version="1")
    register_model(registry, u.model, u.metadata)
    cls = PatchSet(x, rng.integers(0, 4, (8, 32, 32)).astype(np.uint8), names, ["class"])
    c = fit_patch_model(cls, cfg_t, "ImperviousCNN", {"width": 8}, name="impervious", version="1")
    register_model(registry, c.model, c.metadata)


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A file:// model registry holding `register_tiny_models` (plus a unit TempCNN `tempcnn-west`)."""
    registry = ObjectStore(tmp_path_factory.mktemp("tiny-registry").as_uri()).url
    register_tiny_models(registry, ("tempcnn", "tempcnn-west"))
    return registry


@pytest.fixture(scope="module")
def stac_api(pgstac_database: Any, free_port: Any, serve_app: Any) -> Iterator[tuple[str, str]]:
    """A STAC API on a fresh pgstac database: (URL, database name)."""
    from landstack.stac_api.app import create_app
    from landstack.stac_api.settings import ApiSettings

    name = pgstac_database("landstack_pipelines")
    port = free_port()
    served = serve_app(create_app(ApiSettings(db_name=name, port=port)), port)
    try:
        yield served.url, name
    finally:
        served.stop()


def _publish_archive(
    store: ObjectStore, dbname: str, collection_id: str, seed: int, size_m: float = 600, **synth: Any
) -> SynthResult:
    """A small synthetic archive (Nov 2023 – Jan 2024 unless given) written and published into pgstac."""
    from landstack.pipelines.publish import PgstacTarget, publish
    from landstack.pipelines.settings import Settings

    cfg = SynthConfig(
        aoi=Aoi.around(16.3, 48.2, size_m),
        start=synth.pop("start", dt.date(2023, 11, 1)),
        end=synth.pop("end", dt.date(2024, 1, 31)),
        seed=seed,
        revisit_days=synth.pop("revisit_days", 30),
        points_per_class=synth.pop("points_per_class", 2),
        collection_id=collection_id,
        **synth,
    )
    prefix = f"archive/{collection_id}"
    result = write_archive(cfg, store, prefix)
    settings = Settings(store_url=store.url, pg_database=dbname)
    target = PgstacTarget(settings.pg_dsn)
    try:
        report = publish(
            store,
            target,
            collections_prefix=f"{prefix}/collection.json",
            items_prefixes=[f"{prefix}/items"],
            settings=settings,
        )
    finally:
        target.close()
    assert report.ok, report.refused
    return result


@pytest.fixture(scope="session")
def publish_archive() -> Any:
    """`publish(store, dbname, collection_id, seed, size_m=600, **synth) -> SynthResult`."""
    return _publish_archive
