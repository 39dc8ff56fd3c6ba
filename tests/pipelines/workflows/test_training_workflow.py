"""The training workflow through the local runner: a model that misses its targets is not rolled out.

The labels of the synthetic archive's sample points are shuffled, so the TempCNN cannot reach
the accuracy targets: the gate rejects it, nothing is registered, the InferenceService is not
patched, and the report step runs instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from landstack.pipelines import workflows
from landstack.pipelines.runner import LocalRunner, RunOptions
from landstack.pipelines.runner.local_resources import default_handlers, deployments_dir
from landstack.pipelines.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_model_missing_its_targets_is_not_rolled_out(
    stac_api: tuple[str, str], publish_archive: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, dbname = stac_api
    monkeypatch.setenv("LANDSTACK_STORE_URL", (tmp_path / "store").as_uri())
    monkeypatch.setenv("LANDSTACK_LOCAL_DIR", str(tmp_path / "local"))
    monkeypatch.setenv("LANDSTACK_PG_DATABASE", dbname)
    get_settings.cache_clear()
    settings = get_settings()
    store = settings.store()
    archive = publish_archive(
        store, dbname, "sentinel-2-l2a-synthetic-gate", seed=3, size_m=900, points_per_class=8
    )
    points = pd.read_parquet(store.open(archive.samples_key))
    points["label"] = np.random.default_rng(0).permutation(points["label"].to_numpy())
    shuffled = tmp_path / "shuffled.parquet"
    points.to_parquet(shuffled, index=False)
    labels = store.put_file(shuffled, "samples/shuffled-points.parquet")
    crs = archive.scene.crs if archive.scene else "EPSG:4326"
    lon0, lat0, lon1, lat1 = archive.scene and __import__("landstack.catalog.grid", fromlist=["Aoi"]).Aoi(
        archive.scene.bounds, crs
    ).to_crs("EPSG:4326")
    runner = LocalRunner(
        workflows.load("landstack-training"),
        RunOptions(
            runs_dir=tmp_path / "runs",
            mode="in-process",
            backoff_scale=0,
            resource_handlers=default_handlers(settings.local_dir),
        ),
    )
    result = runner.run(
        {
            "source": url,
            "collection": "sentinel-2-l2a-synthetic-gate",
            "year": "2023",
            "aoi": json.dumps([lon0, lat0, lon1, lat1]),
            "labels": labels,
            "labels-crs": crs,
            "model-name": "tempcnn-gate",
            "epochs": "2",
            "clean-labels": "false",
        }
    )
    phases = {node.rsplit("/", 1)[-1]: entry["phase"] for node, entry in result.nodes.items()}
    evaluation = json.loads(
        next(e["result"] for n, e in result.nodes.items() if n.endswith("/evaluate/accept-models"))
    )
    assert evaluation["targets_met"] is False and evaluation["rejected"]
    assert phases["register"] == "Skipped" and phases["release"] == "Skipped"
    assert phases["rollout"] == "Skipped"
    report = json.loads(next(e["result"] for n, e in result.nodes.items() if n.endswith("/report/report")))
    assert report["targets_met"] is False and store.exists(store.key_of(report["report"]))
    assert not store.list("models/tempcnn-gate") and not store.list("releases/tempcnn-gate")
    assert not deployments_dir(settings.local_dir).exists()
    get_settings.cache_clear()
