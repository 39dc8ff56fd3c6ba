"""synth-archive, features and samples through `step run` on a tiny synthetic archive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rasterio

from landstack.pipelines.settings import get_settings
from landstack.storage import ObjectStore

from .conftest import snapshot, step_run, use_store

# About 600 m x 550 m near Vienna; an acquisition every 20 days over the series of 2023.
SYNTH = {
    "bbox": [16.296, 48.198, 16.304, 48.203],
    "start": "2022-10-01",
    "end": "2024-03-31",
    "revisit_days": 20,
    "points_per_class": 4,
    "seed": 3,
}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ObjectStore, dict[str, Any]]]:
    """The synth-archive step's output in a store of its own (the configured store for the module)."""
    tmp = tmp_path_factory.mktemp("steps-archive")
    with pytest.MonkeyPatch.context() as mp:
        store = use_store(mp, tmp / "store")
        yield tmp, store, step_run("synth-archive", SYNTH, tmp).output
    get_settings.cache_clear()


def _path(store: ObjectStore, url: str) -> Path:
    return Path(store.path(url[len(store.url) + 1 :]))


def test_synth_archive_writes_a_collection_and_items(
    archive: tuple[Path, ObjectStore, dict[str, Any]],
) -> None:
    _tmp, store, out = archive
    assert out["collection_url"] == store.href("archive/synthetic/collection.json")
    collection = json.loads(_path(store, out["collection_url"]).read_text())
    assert collection["type"] == "Collection"
    items = [json.loads(_path(store, u).read_text()) for u in out["item_urls"]]
    assert out["items"] == len(items) > 10
    assert {i["collection"] for i in items} == {collection["id"]}
    for item in items[:3]:
        href = item["assets"]["red"]["href"]
        with rasterio.open(_path(store, href)) as ds:
            assert ds.count == 1 and ds.dtypes[0] == "uint16"
    points = pd.read_parquet(_path(store, out["samples_url"]))
    assert {"x", "y", "label"} <= set(points.columns)
    assert set(out["truth_urls"]) >= {"landcover", "imperviousness"}


def test_synth_archive_twice_writes_nothing(archive: tuple[Path, ObjectStore, dict[str, Any]]) -> None:
    tmp, _store, out = archive
    before = snapshot(tmp / "store")
    again = step_run("synth-archive", SYNTH, tmp)
    assert again.output == out
    assert "outputs for this input exist" in again.stderr
    assert snapshot(tmp / "store") == before
    # an equivalent input written differently (defaults spelled out) is the same input
    assert step_run("synth-archive", {**SYNTH, "crs": "EPSG:4326", "force": False}, tmp).output == out
    assert snapshot(tmp / "store") == before


@pytest.mark.slow
def test_features_step(archive: tuple[Path, ObjectStore, dict[str, Any]]) -> None:
    tmp, store, synth = archive
    inp = {
        "bbox": [16.297, 48.199, 16.303, 48.202],
        "year": 2023,
        "catalog_url": synth["collection_url"],
        "tile_id": "t1",
    }
    out = step_run("features", inp, tmp).output
    assert set(out["asset_urls"]) >= {"NDVI", "B04", "data_score"}
    assert out["asset_urls"]["NDVI"] == store.href("features/t1/2023/timeseries/NDVI.tif")
    with rasterio.open(_path(store, out["asset_urls"]["NDVI"])) as ds:
        assert ds.count == 54 and ds.crs.to_epsg() == 3035
        ndvi = ds.read()
    assert np.isfinite(ndvi).any() and np.nanmax(ndvi) <= 1.0
    manifest = json.loads(_path(store, out["manifest_url"]).read_text())
    assert manifest["assets"] == out["asset_urls"] and manifest["input"]["year"] == 2023
    before = snapshot(tmp / "store")
    assert step_run("features", inp, tmp).output == out
    assert snapshot(tmp / "store") == before

    unet = step_run("features", {**inp, "kind": "unet"}, tmp).output
    assert unet["asset_urls"] == {"unet_inputs": store.href("features/t1/2023/unet/unet_inputs.tif")}
    with rasterio.open(_path(store, unet["asset_urls"]["unet_inputs"])) as ds:
        assert ds.count > 10 and np.isfinite(ds.read(1)).any()


@pytest.mark.slow
def test_samples_step(archive: tuple[Path, ObjectStore, dict[str, Any]]) -> None:
    tmp, store, synth = archive
    scene = json.loads((tmp / "store" / "archive" / "synthetic" / "scene.json").read_text())
    inp = {
        "bbox": SYNTH["bbox"],
        "year": 2023,
        "catalog_url": synth["collection_url"],
        "points_url": synth["samples_url"],
        "points_crs": scene["crs"],
        "out": "samples/steps.parquet",
    }
    out = step_run("samples", inp, tmp).output
    assert out["table_url"] == store.href("samples/steps.parquet")
    table = pd.read_parquet(_path(store, out["table_url"]))
    points = pd.read_parquet(_path(store, synth["samples_url"]))
    assert out["rows"] == len(table) > 0 and out["columns"] == table.shape[1]
    assert set(table["label"]) <= set(points["label"])
    assert {"NDVI_0", "NDVI_53", "B04_0", "data_score"} <= set(table.columns)
