"""clean-labels, train, evaluate and register through `step run`, and `train --units --register`."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from landstack.models.patches import PatchSet, save_patches
from landstack.models.registry import load_item, load_registered
from landstack.pipelines.cli import app
from landstack.pipelines.steps import run_step
from landstack.storage import ObjectStore

from .conftest import class_table, snapshot, step_run, west_polygon

torch.set_num_threads(1)

TINY = {
    "epochs": 5,
    "batch_size": 16,
    "lr": 0.01,
    "threads": 1,
    "hyperparameters": {"filters": 8, "dense": 16},
}


def _put_table(store: ObjectStore, key: str, df: pd.DataFrame) -> str:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return store.put_bytes(key, buf.getvalue())


def _local(store: ObjectStore, url: str) -> Path:
    assert url.startswith(store.url + "/"), url
    return Path(store.path(url[len(store.url) + 1 :]))


@pytest.fixture
def tables(store: ObjectStore) -> dict[str, str]:
    return {
        "train": _put_table(store, "samples/train.parquet", class_table(seed=1)),
        "test": _put_table(store, "samples/test.parquet", class_table(n_per_class=8, seed=2)),
    }


def test_train_evaluate_register_chain(tmp_path: Path, store: ObjectStore, tables: dict[str, str]) -> None:
    root = tmp_path / "store"
    train_in = {"architecture": "tempcnn", "samples": tables["train"], "name": "lc", "version": "v1", **TINY}
    trained = step_run("train", train_in, tmp_path).output
    assert trained["name"] == "lc" and trained["version"] == "v1"
    assert _local(store, trained["model_url"]).is_file()
    metrics = json.loads(_local(store, trained["metrics_url"]).read_text())
    assert metrics["overall_accuracy"] == trained["metrics"]["overall_accuracy"] > 0.5
    assert trained["targets_met"] == metrics["targets_passed"]
    assert trained["unit_model_urls"] == {} and trained["units_url"] is None
    assert "confusion_matrix.png" in trained["files"]

    # same input again: same output, nothing written
    before = snapshot(root)
    assert step_run("train", train_in, tmp_path).output == trained
    assert snapshot(root) == before
    # force: trained again (files rewritten)
    forced = step_run("train", {**train_in, "force": True}, tmp_path).output
    assert forced["model_url"] == trained["model_url"]
    assert (
        snapshot(root)[_local(store, trained["model_url"]).relative_to(root).as_posix()]
        > before[_local(store, trained["model_url"]).relative_to(root).as_posix()]
    )

    evaluated = step_run(
        "evaluate", {"model_url": trained["model_url"], "test_url": tables["test"]}, tmp_path
    ).output
    em = json.loads(_local(store, evaluated["metrics_url"]).read_text())
    assert em["samples"] == 24 and em["model"] == {"name": "lc", "version": "v1", "url": trained["model_url"]}
    assert evaluated["targets_met"] == em["targets_passed"] == em["targets_met"]
    assert evaluated["metrics"]["overall_accuracy"] == em["overall_accuracy"] > 0.5

    # the same input from stdin, the output also into a file (what a workflow container reads)
    out_file = tmp_path / "outputs" / "evaluate.json"
    res = CliRunner().invoke(
        app,
        ["step", "run", "evaluate", "--input", "-", "--output", str(out_file)],
        input=json.dumps({"model_url": trained["model_url"], "test_url": tables["test"]}),
    )
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout) == json.loads(out_file.read_text()) == evaluated
    # in-process, as the local runner calls it
    assert run_step("evaluate", {"model_url": trained["model_url"], "test_url": tables["test"]}) == evaluated

    reg_in = {
        "model_url": trained["model_url"],
        "metrics_url": trained["metrics_url"],
        "file_urls": [trained["files"]["confusion_matrix.png"]],
        "name": "landcover",
        "training_data": tables["train"],
    }
    registered = step_run("register", reg_in, tmp_path).output
    assert registered["name"] == "landcover" and registered["version"] == "v1"
    assert registered["item_url"] == store.href("models/landcover/v1/item.json")
    item = load_item(store, "landcover", "v1")
    assert {"model", "metrics", "confusion-matrix"} <= set(item["assets"])
    assert item["links"][0]["href"] == tables["train"]
    _, meta = load_registered(store, "landcover")
    assert meta["name"] == "landcover" and [c["value"] for c in meta["output"]["classes"]] == [1, 2, 3]
    before = snapshot(root)
    assert step_run("register", reg_in, tmp_path).output == registered
    assert snapshot(root) == before


def test_train_per_production_unit(tmp_path: Path, store: ObjectStore, tables: dict[str, str]) -> None:
    units = store.put_json("units/west.geojson", west_polygon())
    out = step_run(
        "train",
        {
            "architecture": "tempcnn",
            "samples": tables["train"],
            "units": units,
            "min_unit_samples": 20,
            **TINY,
        },
        tmp_path,
    ).output
    assert set(out["unit_model_urls"]) == {"west", "fallback"}
    assert out["model_url"] == out["unit_model_urls"]["fallback"]
    assert len(out["version"]) == 12  # derived from the input: a re-run finds the same outputs
    summary = json.loads(_local(store, out["units_url"]).read_text())
    assert summary["units"]["fallback"]["samples"] == 72 and summary["units"]["west"]["samples"] < 72
    for url in out["unit_model_urls"].values():
        assert _local(store, url).is_file()


def test_train_patch_model(tmp_path: Path, store: ObjectStore) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4, 16, 16)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 1)
    local = save_patches(tmp_path / "cisc.npz", PatchSet(x, y, ["b1", "b2", "b3", "b4"], []))
    url = store.put_file(local, "samples/cisc.npz")
    job = {"architecture": "impervious", "samples": url, "epochs": 1, "threads": 1, "batch_size": 4}
    out = step_run("train", {**job, "hyperparameters": {"width": 4}}, tmp_path).output
    assert out["name"] == "impervious" and "overall_accuracy" in out["metrics"]
    assert _local(store, out["model_url"]).is_file()
    evaluated = step_run("evaluate", {"model_url": out["model_url"], "test_url": url}, tmp_path).output
    assert isinstance(evaluated["targets_met"], bool)


def test_clean_labels(tmp_path: Path, store: ObjectStore) -> None:
    df = class_table(n_per_class=20, seed=3)
    flipped = df.index[:6]
    df.loc[flipped, "label"] = df.loc[flipped, "label"] % 3 + 1  # wrong labels
    url = _put_table(store, "samples/noisy.parquet", df)
    inp = {
        "table_url": url,
        "iterations": 1,
        "epochs": 4,
        "threads": 1,
        "hyperparameters": {"filters": 8, "dense": 16},
    }
    out = step_run("clean-labels", inp, tmp_path).output
    assert out["table_url"].startswith(store.href("samples/"))  # under the input's own hash
    assert out["table_url"].endswith("/noisy-clean.parquet")
    cleaned = pd.read_parquet(_local(store, out["table_url"]))
    issues = pd.read_csv(_local(store, out["issues_url"]))
    assert out["rows"] == len(cleaned) == len(df) - out["flagged"]
    assert len(issues) == out["flagged"]
    assert list(cleaned.columns[:4]) == ["label", "group", "x", "y"]


def _registered(root: Path) -> dict[str, Any]:
    return {p.parent.parent.name: json.loads(p.read_text()) for p in root.glob("models/*/*/item.json")}


def test_cli_train_units_registers_each_unit_and_the_fallback(tmp_path: Path) -> None:
    samples = tmp_path / "samples.parquet"
    class_table(seed=1).to_parquet(samples)
    units = tmp_path / "units.geojson"
    units.write_text(json.dumps(west_polygon()))
    registry = tmp_path / "registry"
    args = ["train", "tempcnn", "--samples", str(samples), "--out", str(tmp_path / "run")]
    args += ["--units", str(units), "--min-unit-samples", "20", "--epochs", "2", "--filters", "8"]
    args += ["--lr", "0.01", "--batch-size", "16"]
    args += ["--dense", "16", "--threads", "1", "--name", "lc", "--version", "v7"]
    args += ["--register", "--registry", registry.as_uri()]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    items = _registered(registry)
    assert set(items) == {"lc-west", "lc-fallback"}
    for name, item in items.items():
        assert item["properties"]["mlm:name"] == name and item["properties"]["version"] == "v7"
        _, meta = load_registered(registry.as_uri(), name)
        assert meta["name"] == name
    assert "registered lc-west v7" in res.output and "registered lc-fallback v7" in res.output


@pytest.mark.integration
def test_train_and_register_on_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    from landstack.pipelines.settings import get_settings

    endpoint = "http://127.0.0.1:55900"
    bucket = f"steps-{uuid.uuid4().hex[:8]}"
    for key, value in {
        "LANDSTACK_STORE_URL": f"s3://{bucket}/root",
        "LANDSTACK_S3_ENDPOINT_URL": endpoint,
        "LANDSTACK_S3_ACCESS_KEY_ID": "testing",
        "LANDSTACK_S3_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        import s3fs

        try:
            s3fs.S3FileSystem(endpoint_url=endpoint, key="testing", secret="testing").mkdir(bucket)
        except Exception as e:  # moto not running
            pytest.skip(
                f"moto S3 at {endpoint} is not reachable ({e}); start it with `landstack services up`"
            )
        store = get_settings().store()
        samples = _put_table(store, "samples/train.parquet", class_table(seed=1))
        job = {"architecture": "tempcnn", "samples": samples, "version": "s3", **TINY}
        trained = step_run("train", job, tmp_path).output
        assert trained["model_url"] == f"s3://{bucket}/root/runs/training/tempcnn/s3/model.pt"

        def listing() -> dict[str, Any]:
            store.fs.invalidate_cache()
            return {k: v.get("LastModified") for k, v in store.fs.find(bucket, detail=True).items()}

        before = listing()
        assert step_run("train", job, tmp_path).output == trained
        assert listing() == before
        reg = step_run(
            "register", {"model_url": trained["model_url"], "metrics_url": trained["metrics_url"]}, tmp_path
        )
        assert reg.output["item_url"] == f"s3://{bucket}/root/models/tempcnn/s3/item.json"
        _, meta = load_registered(store, "tempcnn", "s3")
        assert meta["version"] == "s3"
    finally:
        get_settings.cache_clear()


def test_cli_train_rejects_an_inconsistent_job(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["train", "unet", "--out", str(tmp_path / "run")])
    assert res.exit_code == 2, res.output
    assert "give 'samples' (a .npz patch set), or 'features' (feature rasters) and 'truth'" in res.stderr
    assert "Traceback" not in res.output and not (tmp_path / "run").exists()
