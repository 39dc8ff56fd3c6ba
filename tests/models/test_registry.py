"""The model registry on file:// and on S3 (moto), with a valid STAC item."""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from landstack.models import (
    RegistryError,
    load_item,
    load_model,
    load_registered,
    predict_proba,
    register_model,
)
from landstack.models.fitting import Trained, fit_tempcnn
from landstack.models.registry import MLM_SCHEMA, list_versions
from landstack.models.tables import SampleTable, table_from_frame
from landstack.models.training import TrainConfig
from landstack.storage import ObjectStore, S3Options, layout

from .conftest import synthetic_table

torch.set_num_threads(1)
S3_ENDPOINT = "http://127.0.0.1:55900"


@pytest.fixture(scope="module")
def trained() -> tuple[Trained, SampleTable]:
    table = table_from_frame(synthetic_table(n_per_class=5, time_steps=6))
    t = fit_tempcnn(
        table, TrainConfig(epochs=1, threads=1), {"filters": 8, "dense": 16}, name="lc-test", version="1"
    )
    return t, table


def _validator(shared: Path) -> Any:
    spec = importlib.util.spec_from_file_location("shared_schemas", shared / "tools" / "schemas.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.validate_stac


def test_register_and_load_file_store(
    tmp_path: Path, trained: tuple[Trained, SampleTable], shared_dir: Path
) -> None:
    t, table = trained
    plot = tmp_path / "confusion_matrix.png"
    plot.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    root = (tmp_path / "store").as_uri()
    metrics = {"overall_accuracy": 0.5, "kappa": 0.4, "macro_f1": 0.45, "targets_passed": False}
    reg = register_model(root, t.model, t.metadata, metrics, [plot], training_data="file:///samples.parquet")
    base = tmp_path / "store" / "models" / "lc-test"
    assert (base / "1" / "model.pt").exists() and (base / "1" / "metrics.json").exists()
    assert (base / "1" / "confusion_matrix.png").exists()
    assert json.loads((base / "latest").read_text()) == {"version": "1"}
    assert not list(base.rglob("*.tmp-*"))
    model, meta = load_registered(root, "lc-test")
    np.testing.assert_allclose(
        predict_proba(model, meta, table.x), predict_proba(t.model, t.metadata, table.x), atol=1e-5
    )
    item = load_item(root, "lc-test")
    assert item == reg.item
    props = item["properties"]
    assert props["mlm:architecture"] == "TempCNN" and props["mlm:framework"] == "pytorch"
    assert props["mlm:tasks"] == ["classification"]
    assert props["mlm:input"][0]["input"]["shape"] == [-1, 4, 6]
    assert props["mlm:input"][0]["bands"] == ["B04", "B08", "B11", "NDVI"]
    assert len(props["mlm:input"][0]["value_scaling"]) == 4
    assert len(props["mlm:output"][0]["classification:classes"]) == 11
    assert props["mlm:total_parameters"] == sum(p.numel() for p in t.model.parameters())
    assert props["landstack:metrics"]["overall_accuracy"] == 0.5
    assert item["assets"]["model"]["roles"] == ["mlm:model", "mlm:weights"]
    assert item["assets"]["model"]["file:size"] == (base / "1" / "model.pt").stat().st_size
    assert {"rel": "derived_from", "href": "file:///samples.parquet", "title": "training samples"} in item[
        "links"
    ]
    assert _validator(shared_dir)(item) == []
    # the MLM schema is not available offline: listing it would make the item fail validation
    assert MLM_SCHEMA not in item["stac_extensions"]
    # a second version moves `latest`
    t.metadata["version"] = "2"
    register_model(root, t.model, t.metadata)
    t.metadata["version"] = "1"
    assert list_versions(root, "lc-test") == ["1", "2"]
    assert load_registered(root, "lc-test")[1]["version"] == "2"


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="does not exist"):
        load_registered((tmp_path / "empty").as_uri(), "nothing")


def test_registry_takes_an_object_store_and_uses_the_layout(
    tmp_path: Path, trained: tuple[Trained, SampleTable]
) -> None:
    t, _ = trained
    store = ObjectStore((tmp_path / "store").as_uri())
    reg = register_model(store, t.model, t.metadata)
    prefix = layout.model_prefix("lc-test", "1")
    assert reg.model_href == store.href(f"{prefix}/model.pt")
    assert store.read_json(layout.model_latest_key("lc-test")) == {"version": "1"}
    assert store.list(layout.model_root("lc-test")) == [
        f"{prefix}/item.json",
        f"{prefix}/model.pt",
        layout.model_latest_key("lc-test"),
    ]
    assert load_item(store, "lc-test", "1")["id"] == "lc-test-1"


def test_bad_registry_root_is_a_registry_error() -> None:
    with pytest.raises(RegistryError, match=r"'ftp://host/models'.*s3://bucket/prefix"):
        load_registered("ftp://host/models", "x")


@pytest.mark.integration
def test_register_and_load_on_s3(trained: tuple[Trained, SampleTable]) -> None:
    s3fs = pytest.importorskip("s3fs")
    s3 = S3Options(endpoint_url=S3_ENDPOINT, access_key_id="testing", secret_access_key="testing")
    fs = s3fs.S3FileSystem(endpoint_url=S3_ENDPOINT, key="testing", secret="testing")
    bucket = f"models-{uuid.uuid4().hex[:8]}"
    try:
        fs.mkdir(bucket)
    except Exception as e:  # moto not running
        pytest.skip(f"moto S3 at {S3_ENDPOINT} is not reachable ({e}); start it with `landstack services up`")
    t, table = trained
    root = f"s3://{bucket}/registry"
    reg = register_model(root, t.model, t.metadata, {"overall_accuracy": 0.5}, s3=s3)
    assert reg.model_href == f"{root}/models/lc-test/1/model.pt"
    fs.invalidate_cache()
    keys = sorted(fs.find(f"{bucket}/registry"))
    assert keys == [
        f"{bucket}/registry/models/lc-test/1/item.json",
        f"{bucket}/registry/models/lc-test/1/metrics.json",
        f"{bucket}/registry/models/lc-test/1/model.pt",
        f"{bucket}/registry/models/lc-test/latest",
    ]
    assert list_versions(root, "lc-test", s3) == ["1"]
    model, meta = load_registered(root, "lc-test", s3=s3)
    assert meta["name"] == "lc-test"
    np.testing.assert_allclose(
        predict_proba(model, meta, table.x), predict_proba(t.model, t.metadata, table.x), atol=1e-5
    )
    # the model file alone, by URL, through the same S3 options
    _, meta_url = load_model(reg.model_href, s3)
    assert meta_url == meta
    assert load_item(root, "lc-test", s3=s3)["assets"]["model"]["href"] == reg.model_href
