"""The model registry: versioned model files, metrics, plots and a STAC item in an object store.

Layout under the root URL (file:// or s3://; S3 endpoint and credentials as `S3Options`), with the
keys from `landstack.storage.layout` (``model_prefix``, ``model_latest_key``)::

    models/<name>/<version>/model.pt      weights + metadata (see landstack.models.modelfile)
    models/<name>/<version>/metrics.json
    models/<name>/<version>/<plot>.png / .csv
    models/<name>/<version>/item.json     STAC item with machine-learning-model (MLM) fields
    models/<name>/latest                  {"version": "<version>"}

Every object is written through `landstack.storage.ObjectStore` (temporary key, then moved); the
item is written after the files it points at and the `latest` pointer last, so readers never see a
half-registered model. Several registered versions served together (every production unit's model
and the fallback) are gathered into a release folder by `landstack.models.releases`.

The STAC item carries the MLM extension fields under the ``mlm:`` prefix (``mlm:name``,
``mlm:architecture``, ``mlm:tasks``, ``mlm:framework``, ``mlm:framework_version``,
``mlm:input``, ``mlm:output``, ``mlm:accelerator``, ``mlm:total_parameters``, ...) but does not
list the MLM schema URL in ``stac_extensions``: that schema is not available offline, and an
item whose extension schema cannot be resolved fails validation. Core, file, version and
classification are declared and validated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import posixpath
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from landstack.catalog.items import Asset, FileInfo, build_item, item_doc
from landstack.models.errors import RegistryError
from landstack.models.modelfile import count_parameters, model_bytes, model_from_bytes
from landstack.storage import ObjectStore, S3Options, StoreError
from landstack.storage.layout import model_latest_key, model_prefix, model_root

MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"
EUROPE_BBOX = (-31.5, 27.6, 44.9, 71.2)

_MEDIA = {".json": "application/json", ".png": "image/png", ".csv": "text/csv"}


@dataclass
class Registered:
    """Where a registered model lives."""

    name: str
    version: str
    model_href: str
    item_href: str
    item: dict[str, Any]


Root = str | ObjectStore
"""A registry root: its URL (file:// or s3://, with `S3Options` for S3) or an ObjectStore."""


def _store(root: Root, s3: S3Options | None) -> ObjectStore:
    if isinstance(root, ObjectStore):
        return root
    try:
        return ObjectStore(root, s3)
    except StoreError as e:
        raise RegistryError(f"cannot open the model registry: {e}") from e


@contextmanager
def _registry_io(hint: str = "") -> Iterator[None]:
    """Object-store errors as RegistryError (the store's message names the URL)."""
    try:
        yield
    except StoreError as e:
        raise RegistryError(f"{e}{hint}") from e


def _classification_classes(classes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Classes as the classification extension wants them: slug names, full names as descriptions."""
    out = []
    for c in classes:
        entry = {
            "value": int(c["value"]),
            "name": re.sub(r"[^0-9A-Za-z_-]+", "-", c["name"]).strip("-").lower(),
        }
        entry["description"] = c["name"]
        if c.get("color"):
            entry["color_hint"] = str(c["color"]).lstrip("#").upper()
        out.append(entry)
    return out


def _mlm_io(metadata: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    inp = metadata["input"]
    features = inp["features"]
    if metadata["architecture"] == "TempCNN":
        shape = [-1, len(features), int(inp["time_steps"])]
    else:
        shape = [-1, len(features), -1, -1]
    norm = inp["norm"]
    mlm_input = [
        {
            "name": "features",
            "bands": features,
            "input": {"shape": shape, "dim_order": inp["dim_order"], "data_type": "float32"},
            "value_scaling": [
                {"type": "z-score", "mean": m, "stddev": s}
                for m, s in zip(norm["mean"], norm["std"], strict=True)
            ],
            "norm_by_channel": True,
            "resize_type": None,
        }
    ]
    out = metadata["output"]
    task = metadata["task"]
    if task == "regression":
        result_shape = [-1, len(out["targets"]), -1, -1]
        dims = ["batch", "target", "height", "width"]
        entry: dict[str, Any] = {"name": "values", "tasks": ["regression"], "targets": out["targets"]}
    else:
        n = len(out["classes"])
        result_shape = [-1, n] if task == "classification" else [-1, n, -1, -1]
        dims = ["batch", "class"] if task == "classification" else ["batch", "class", "height", "width"]
        entry = {
            "name": "class-probabilities",
            "tasks": ["classification" if task == "classification" else "semantic-segmentation"],
            "classification:classes": _classification_classes(out["classes"]),
        }
    entry["result"] = {"shape": result_shape, "dim_order": dims, "data_type": "float32"}
    entry["post_processing_function"] = None
    return mlm_input, [entry]


def stac_item(
    metadata: dict[str, Any],
    model_href: str,
    model_size: int,
    model_checksum: str,
    total_parameters: int,
    metrics: dict[str, Any] | None = None,
    assets: dict[str, str] | None = None,
    training_data: str | None = None,
    bbox: tuple[float, float, float, float] = EUROPE_BBOX,
) -> dict[str, Any]:
    """A STAC item describing a model with MLM fields (see the module docstring)."""
    mlm_input, mlm_output = _mlm_io(metadata)
    tasks = {"classification": ["classification"], "segmentation": ["semantic-segmentation"]}.get(
        metadata["task"], ["regression"]
    )
    w, s, e, n = bbox
    created = metadata.get("created")
    when = dt.datetime.fromisoformat(created) if created else dt.datetime.now(dt.UTC).replace(microsecond=0)
    props: dict[str, Any] = {
        "title": f"{metadata['name']} {metadata['version']}",
        "description": f"{metadata['architecture']} {metadata['task']} model {metadata['name']}",
        "version": str(metadata["version"]),
        "mlm:name": metadata["name"],
        "mlm:architecture": metadata["architecture"],
        "mlm:tasks": tasks,
        "mlm:framework": "pytorch",
        "mlm:framework_version": metadata.get("framework_version"),
        "mlm:total_parameters": total_parameters,
        "mlm:pretrained": False,
        "mlm:accelerator": "amd64",
        "mlm:accelerator_constrained": False,
        "mlm:accelerator_summary": "CPU; CUDA when available",
        "mlm:batch_size_suggestion": 4096 if metadata["architecture"] == "TempCNN" else 8,
        "mlm:input": mlm_input,
        "mlm:output": mlm_output,
        "mlm:hyperparameters": metadata.get("hyperparameters", {}),
        "landstack:ensemble_size": int(metadata.get("ensemble_size", 1)),
        "landstack:training": metadata.get("training", {}),
    }
    if metrics:
        props["landstack:metrics"] = {
            k: metrics[k]
            for k in ("overall_accuracy", "kappa", "macro_f1", "targets_passed", "mae", "rmse", "r2", "bias")
            if k in metrics
        }
    if "classes" in metadata["output"]:
        props["classification:classes"] = _classification_classes(metadata["output"]["classes"])
    item_assets: dict[str, Asset] = {
        "model": Asset(
            model_href,
            "application/octet-stream; framework=pytorch; profile=torch.save",
            ["mlm:model", "mlm:weights"],
            title="weights and metadata (torch.save)",
            fields={"mlm:artifact_type": "torch.save"},
            file=FileInfo(model_size, model_checksum),
        )
    }
    for key, href in (assets or {}).items():
        item_assets[key] = Asset(
            href, _MEDIA.get(Path(href).suffix, "application/octet-stream"), ["metadata"]
        )
    links = []
    if training_data:
        links.append({"rel": "derived_from", "href": training_data, "title": "training samples"})
    # the MLM schema is not available offline, so the builder declares only the extensions it can
    # validate (file, version, classification); the mlm: fields are carried all the same
    item = build_item(
        f"{metadata['name']}-{metadata['version']}",
        geometry={"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        datetime=when,
        properties=props,
        assets=item_assets,
        links=links,
    )
    return item_doc(item)


def register_model(
    root: Root,
    model: nn.Module,
    metadata: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    files: list[Path] | None = None,
    s3: S3Options | None = None,
    training_data: str | None = None,
    bbox: tuple[float, float, float, float] = EUROPE_BBOX,
) -> Registered:
    """Store a model with its metrics, plots (`files`) and STAC item; move `latest` to it."""
    store = _store(root, s3)
    name, version = str(metadata["name"]), str(metadata["version"])
    prefix = model_prefix(name, version)
    blob = model_bytes(model, metadata)
    with _registry_io():
        model_href = store.put_bytes(f"{prefix}/model.pt", blob)
        assets: dict[str, str] = {}
        if metrics is not None:
            assets["metrics"] = store.put_json(f"{prefix}/metrics.json", metrics)
        for f in files or []:
            assets[Path(f).stem.replace("_", "-")] = store.put_file(f, f"{prefix}/{Path(f).name}")
    checksum = "1220" + hashlib.sha256(blob).hexdigest()  # multihash: sha2-256, 32 bytes
    item = stac_item(
        metadata,
        model_href,
        len(blob),
        checksum,
        count_parameters(model),
        metrics,
        assets,
        training_data,
        bbox,
    )
    item["links"].append(
        {"rel": "self", "href": store.href(f"{prefix}/item.json"), "type": "application/geo+json"}
    )
    with _registry_io():
        item_href = store.put_json(f"{prefix}/item.json", item)
        store.put_json(model_latest_key(name), {"version": version})
    return Registered(name, version, model_href, item_href, item)


def latest_version(root: Root, name: str, s3: S3Options | None = None) -> str:
    """The version the `latest` pointer of model `name` names."""
    store = _store(root, s3)
    key = model_latest_key(name)
    with _registry_io(f"; register model {name!r} first"):
        doc = store.read_json(key)
    try:
        return str(doc["version"])
    except (TypeError, KeyError) as e:
        raise RegistryError(f"{store.href(key)} is corrupt; re-register the model") from e


def list_versions(root: Root, name: str, s3: S3Options | None = None) -> list[str]:
    """Registered versions of model `name` (those with an item.json)."""
    store = _store(root, s3)
    root = model_root(name)
    with _registry_io():
        keys = store.list(root, suffix="/item.json")
    # only <root>/<version>/item.json: one level below the model's folder
    return sorted(v for v in (posixpath.dirname(k[len(root) + 1 :]) for k in keys) if v and "/" not in v)


def load_registered(
    root: Root, name: str, version: str = "latest", s3: S3Options | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Module and metadata of a registered model (`latest` follows the pointer)."""
    store = _store(root, s3)
    if version == "latest":
        version = latest_version(store, name)
    key = f"{model_prefix(name, version)}/model.pt"
    with _registry_io(f"; register model {name!r} version {version!r} first"):
        data = store.read_bytes(key)
    return model_from_bytes(data, store.href(key))


def load_item(root: Root, name: str, version: str = "latest", s3: S3Options | None = None) -> dict[str, Any]:
    """The STAC item of a registered model."""
    store = _store(root, s3)
    if version == "latest":
        version = latest_version(store, name)
    with _registry_io(f"; register model {name!r} version {version!r} first"):
        item: dict[str, Any] = store.read_json(f"{model_prefix(name, version)}/item.json")
    return item
