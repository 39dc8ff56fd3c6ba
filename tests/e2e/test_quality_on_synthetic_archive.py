"""Quality targets on the synthetic archive's own samples (issue targets, measured through the chain).

TempCNN: held-out OA >= 0.90 on samples extracted from the archive, reported beside a 500-tree
random forest on the same grouped split. U-Net: imperviousness density from band quantiles and NDVI
harmonics of the same archive, MAE <= 10 percentage points against the truth layer.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from landstack.models.patches import sample_patches
from landstack.models.runs import RunOptions, run_patch_model, run_tempcnn
from landstack.models.tables import read_table
from landstack.models.training import TrainConfig
from landstack.pipelines import features, ingest, samples
from landstack.pipelines.feature_rasters import write_geotiff
from landstack.pipelines.synth import Aoi, SynthConfig, SynthResult, write_archive
from landstack.storage import ObjectStore

pytestmark = pytest.mark.slow

YEAR = 2023
AOI = Aoi.around(16.30, 48.20, 2400)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[ObjectStore, SynthResult, list[Any]]:
    store = ObjectStore(tmp_path_factory.mktemp("quality").as_uri())
    cfg = SynthConfig(
        aoi=AOI, start=dt.date(YEAR - 1, 10, 1), end=dt.date(YEAR + 1, 3, 31), seed=5, points_per_class=120
    )
    result = write_archive(cfg, store, "archive")
    items = ingest.search_items(AOI, cfg.start, cfg.end, catalog_href=store.href(result.collection_key))
    return store, result, items


def test_tempcnn_on_archive_samples(
    archive: tuple[ObjectStore, SynthResult, list[Any]], tmp_path: Path
) -> None:
    store, result, items = archive
    torch.set_num_threads(2)
    cfg = features.FeatureConfig()
    stack = ingest.load_stack(items, cfg.needed_bands, aoi=AOI, crs="EPSG:3035", chunks=256)
    points = pd.read_parquet(store.path(result.samples_key))
    table = samples.extract_samples(stack, points, YEAR, points_crs=result.scene.crs, cfg=cfg)
    path = tmp_path / "training.parquet"
    table.to_parquet(path)
    options = RunOptions(
        # a fixed schedule (as Pelletier et al.): early stopping on a small grouped validation split of
        # a few parcels is noisy from run to run
        config=TrainConfig(epochs=30, val_fraction=0.0, threads=2, seed=1),
        compare_rf=True,
        rf_trees=500,
        final_fit=False,
    )
    m = run_tempcnn(read_table(path), tmp_path / "run", options).metrics
    rf = m["random_forest"]["overall_accuracy"]
    (tmp_path / "report.json").write_text(json.dumps({"tempcnn": m["overall_accuracy"], "rf": rf}))
    print(f"archive samples: TempCNN OA {m['overall_accuracy']:.4f}, random forest (500) OA {rf:.4f}")
    assert m["evaluation"]["grouped"]
    assert m["overall_accuracy"] >= 0.90
    # Both classifiers saturate on this archive (0.99-1.00), so "TempCNN beats the forest" cannot be
    # shown here; tests/models/test_accuracy_targets.py shows it on data with phenology shifts.
    assert rf >= 0.90 and abs(m["overall_accuracy"] - rf) < 0.05, (m["overall_accuracy"], rf)


def test_unet_imperviousness_on_archive(
    archive: tuple[ObjectStore, SynthResult, list[Any]], tmp_path: Path
) -> None:
    store, result, items = archive
    torch.set_num_threads(2)
    cfg = features.FeatureConfig()
    bands = list(dict.fromkeys([*cfg.quantile_bands, "B04", "B08"]))
    # the truth layers cover the scene's native UTM grid: read the archive's full extent on that grid
    stack = ingest.load_stack(items, bands, crs="native", chunks=256)
    inputs = features.unet_inputs(stack, cfg)
    write_geotiff(inputs, store, "features/unet_inputs.tif", float("nan"))
    patches = sample_patches(
        [store.path("features/unet_inputs.tif")],
        store.path(result.truth_keys["imperviousness"]),
        patch_size=32,
        n_patches=240,
        task="regression",
        seed=2,
    )
    options = RunOptions(
        config=TrainConfig(epochs=80, threads=2, batch_size=8, lr=2e-3, patience=15, seed=1),
        hyperparameters={"depth": 2, "width": 16},
        final_fit=False,
    )
    m = run_patch_model(patches, tmp_path / "unet", options).metrics
    print(f"archive U-Net IMD: MAE {m['mae']:.2f} RMSE {m['rmse']:.2f} R2 {m['r2']} bias {m['bias']:.2f}")
    assert m["mae"] <= 10, m
