"""All four product families end to end on a small synthetic AOI, checked against its truth and the specs.

Small but real models are trained on the archive (TempCNN on its labelled sample points, U-Nets for
imperviousness and built-up and the impervious CNN on patches of its truth rasters), then the steps
run from JSON as the production workflow runs them: predict -> postprocess -> assemble -> summary.

Measured on this archive with these small models (one run, 2 cores): land-cover OA 0.93, IMD MAE
4.3 percentage points, built-up MAE 19.9 m² per 10 m cell (truth is 0 or 100 per cell), CISC OA
0.80; about 2 minutes on idle cores. The thresholds leave a margin for run-to-run variation: land-cover
OA >= 0.85, IMD MAE <= 8, built-up MAE <= 30, CISC OA >= 0.65.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import rasterio
import torch
from rio_cogeo.cogeo import cog_validate

from landstack.catalog.grid import Aoi, RolloutTile
from landstack.catalog.items import check_item
from landstack.pipelines.products import codes
from landstack.pipelines.steps import run_step
from landstack.pipelines.synth import SynthConfig, SynthResult, write_archive
from landstack.storage import ObjectStore

pytestmark = pytest.mark.slow

YEAR = 2023
AOI = Aoi.around(16.30, 48.20, 1500)
THRESHOLDS = {"landcover_oa": 0.85, "imd_mae": 8.0, "builtup_mae": 30.0, "cisc_oa": 0.65}


def _train(store: ObjectStore, result: SynthResult, registry: str, work: Path) -> None:
    from landstack.models.fitting import fit_patch_model, fit_tempcnn
    from landstack.models.patches import sample_patches
    from landstack.models.registry import register_model
    from landstack.models.tables import read_table
    from landstack.models.training import TrainConfig
    from landstack.pipelines import features, ingest, samples
    from landstack.pipelines.feature_rasters import write_geotiff

    torch.set_num_threads(2)
    cfg = features.FeatureConfig()
    items = ingest.search_items(
        AOI, f"{YEAR - 1}-10-01", f"{YEAR + 1}-03-31", catalog_href=store.href(result.collection_key)
    )
    stack = ingest.load_stack(items, cfg.needed_bands, aoi=AOI, crs="EPSG:3035", chunks=256)
    points = pd.read_parquet(store.path(result.samples_key))
    assert result.scene is not None
    table_path = work / "training.parquet"
    samples.extract_samples(stack, points, YEAR, points_crs=result.scene.crs, cfg=cfg).to_parquet(table_path)
    t = fit_tempcnn(
        read_table(table_path),
        TrainConfig(epochs=8, val_fraction=0.0, threads=2, seed=1),
        hyperparameters={"filters": 32, "dense": 64},
        name="tempcnn",
        version="1",
    )
    register_model(registry, t.model, t.metadata)

    bands = list(dict.fromkeys([*cfg.quantile_bands, "B04", "B08"]))
    native = ingest.load_stack(items, bands, crs="native", chunks=256)
    write_geotiff(features.unet_inputs(native, cfg), store, "features/unet_inputs.tif", float("nan"))
    inputs = [store.path("features/unet_inputs.tif")]
    train = TrainConfig(epochs=10, threads=2, batch_size=8, lr=3e-3, patience=10, seed=1)
    imd = sample_patches(
        inputs, store.path(result.truth_keys["imperviousness"]), 32, 160, "regression", seed=2
    )
    u = fit_patch_model(imd, train, "UNet", {"depth": 2, "width": 8}, name="unet-imd", version="1")
    register_model(registry, u.model, u.metadata)
    built = sample_patches(
        inputs, store.path(result.truth_keys["builtup-area"]), 32, 64, "regression", seed=3
    )
    longer = TrainConfig(epochs=20, threads=2, batch_size=8, lr=3e-3, patience=10, seed=1)
    b = fit_patch_model(built, longer, "UNet", {"depth": 2, "width": 16}, name="unet-built", version="1")
    register_model(registry, b.model, b.metadata)
    cls = sample_patches(
        inputs, store.path(result.truth_keys["impervious-classes"]), 32, 64, "classification", seed=4
    )
    c = fit_patch_model(cls, longer, "ImperviousCNN", {"width": 16}, name="impervious", version="1")
    register_model(registry, c.model, c.metadata)


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> tuple[ObjectStore, SynthResult, dict[str, Any]]:
    store = ObjectStore(tmp_path_factory.mktemp("products-e2e").as_uri())
    cfg = SynthConfig(
        aoi=AOI, start=dt.date(YEAR - 1, 10, 1), end=dt.date(YEAR + 1, 3, 31), seed=5, points_per_class=40
    )
    t0 = time.perf_counter()
    result = write_archive(cfg, store, "archive")
    print(f"archive {time.perf_counter() - t0:.0f} s")
    registry = ObjectStore(tmp_path_factory.mktemp("registry").as_uri()).url
    _train(store, result, registry, tmp_path_factory.mktemp("training"))
    print(f"training done at {time.perf_counter() - t0:.0f} s")
    x0, y0, x1, y1 = AOI.to_crs("EPSG:3035")
    tiles = sorted({RolloutTile.at(x, y).code for x in (x0 + 1, x1 - 1) for y in (y0 + 1, y1 - 1)})
    bbox = list(AOI.to_crs("EPSG:4326"))
    for tile in tiles:
        pred = run_step(
            "predict",
            {
                "tile": tile,
                "aoi": bbox,
                "year": YEAR,
                "source": store.href(result.collection_key),
                "registry_url": registry,
                "window": 256,
            },
            store=store,
        )
        run_step("postprocess", {"prediction": pred["item"]}, store=store)
    print(f"predict + postprocess of {len(tiles)} tiles done at {time.perf_counter() - t0:.0f} s")
    items: list[str] = []
    for cell in sorted({t.split("-")[0] for t in tiles}):
        items += run_step("assemble", {"product_tile": cell, "year": YEAR}, store=store)["items"]
    print(f"assembly done at {time.perf_counter() - t0:.0f} s")
    truth = {k: store.href(v) for k, v in result.truth_keys.items() if k != "objects"}
    summary = run_step("summary", {"run": "e2e", "year": YEAR, "truth": truth}, store=store)
    return store, result, {"items": items, "summary": summary}


def test_accuracy_against_the_synthetic_truth(
    produced: tuple[ObjectStore, SynthResult, dict[str, Any]],
) -> None:
    _, _, out = produced
    fam = out["summary"]["families"]
    report = {
        "landcover_oa": fam["clcplus-backbone"]["overall_accuracy"],
        "imd_mae": fam["hrl-imperviousness"]["imd_mae"],
        "builtup_mae": fam["emc-built"]["builtup_mae"],
        "cisc_oa": fam["cisc"]["overall_accuracy"],
    }
    print("products vs synthetic truth:", json.dumps(report))
    assert report["landcover_oa"] >= THRESHOLDS["landcover_oa"], report
    assert report["imd_mae"] <= THRESHOLDS["imd_mae"], report
    assert report["builtup_mae"] <= THRESHOLDS["builtup_mae"], report
    assert report["cisc_oa"] >= THRESHOLDS["cisc_oa"], report


def test_every_layer_meets_its_spec(produced: tuple[ObjectStore, SynthResult, dict[str, Any]]) -> None:
    store, _, out = produced
    collections = set()
    for url in out["items"]:
        item = store.read_json(store.key_of(url))
        check_item(item)  # offline STAC validation
        spec = codes.layer(item["collection"])
        collections.add(spec.id)
        data = item["assets"][spec.asset_key]["href"]
        assert cog_validate(data, quiet=True)[0], data
        with rasterio.open(data) as ds:
            values = ds.read(1)
            assert ds.nodata == spec.nodata
        codes.check_codes(spec, values)  # only declared codes
        assert "thumbnail" in item["assets"]
        if spec.dtype in ("uint8", "uint16"):
            assert "attribute_table" in item["assets"]
            assert Path(store.path(store.key_of(item["assets"]["attribute_table"]["href"]))).exists()
    from landstack.catalog.products import layer_ids

    expected = set(layer_ids()) - {codes.HRL_CHANGE}  # change needs a previous reference year
    assert expected <= collections, sorted(expected - collections)
