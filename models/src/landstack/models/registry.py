"""The model registry: versioned model files, metrics, plots and a STAC item in an object store.

Layout under the root URL (file:// or s3://, fsspec storage options passed in)::

    models/<name>/<version>/model.pt      weights + metadata (see landstack.models.modelfile)
    models/<name>/<version>/metrics.json
    models/<name>/<version>/<plot>.png / .csv
    models/<name>/<version>/item.json     STAC item with machine-learning-model (MLM) fields
    models/<name>/latest                  {"version": "<version>"}

Every object is written to a temporary key and moved into place; the item is written after the
files it points at and the `latest` pointer last, so readers never see a half-registered model.

The STAC item carries the MLM extension fields under the ``mlm:`` prefix (``mlm:name``,
``mlm:architecture``, ``mlm:tasks``, ``mlm:framework``, ``mlm:framework_version``,
``mlm:input``, ``mlm:output``, ``mlm:accelerator``, ``mlm:total_parameters``, ...) but does not
list the MLM schema URL in ``stac_extensions``: that schema is not available offline, and an
item whose extension schema cannot be resolved fails validation. Core, file, version and
classification are declared and validated.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import posixpath
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsspec.core import url_to_fs
from torch import nn

from landstack.models.errors import RegistryError
from landstack.models.modelfile import count_parameters, model_bytes, model_from_bytes

MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"
FILE_SCHEMA = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
VERSION_SCHEMA = "https://stac-extensions.github.io/version/v1.2.0/schema.json"
CLASSIFICATION_SCHEMA = "https://stac-extensions.github.io/classification/v1.1.0/schema.json"
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


class _Store:
    def __init__(self, root_url: str, storage_options: dict[str, Any] | None) -> None:
        self.url = root_url.rstrip("/")
        try:
            self.fs, self.root = url_to_fs(self.url, **(storage_options or {}))
        except (ValueError, ImportError) as e:
            raise RegistryError(
                f"cannot open registry root {root_url!r}: {e}; use file:///path or s3://bucket/prefix"
            ) from e

    def href(self, key: str) -> str:
        return f"{self.url}/{key}"

    def path(self, key: str) -> str:
        return posixpath.join(self.root, key)

    def put(self, key: str, data: bytes) -> str:
        final = self.path(key)
        tmp = f"{final}.tmp-{uuid.uuid4().hex[:12]}"
        try:
            self.fs.makedirs(posixpath.dirname(final), exist_ok=True)
            with self.fs.open(tmp, "wb") as f:
                f.write(data)
            self.fs.mv(tmp, final)
        except OSError as e:
            with contextlib.suppress(Exception):
                self.fs.rm(tmp)
            raise RegistryError(f"cannot write {self.href(key)}: {e}") from e
        return self.href(key)

    def get(self, key: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self.path(key)))
        except FileNotFoundError as e:
            raise RegistryError(f"{self.href(key)} does not exist; register the model first") from e
        except OSError as e:
            raise RegistryError(f"cannot read {self.href(key)}: {e}") from e


def _prefix(name: str, version: str) -> str:
    return f"models/{name}/{version}"


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
    props: dict[str, Any] = {
        "datetime": metadata.get("created") or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
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
    extensions = [FILE_SCHEMA, VERSION_SCHEMA]
    if "classes" in metadata["output"]:
        props["classification:classes"] = _classification_classes(metadata["output"]["classes"])
        extensions.append(CLASSIFICATION_SCHEMA)
    item_assets: dict[str, Any] = {
        "model": {
            "href": model_href,
            "type": "application/octet-stream; framework=pytorch; profile=torch.save",
            "title": "weights and metadata (torch.save)",
            "roles": ["mlm:model", "mlm:weights"],
            "mlm:artifact_type": "torch.save",
            "file:size": model_size,
            "file:checksum": model_checksum,
        }
    }
    for key, href in (assets or {}).items():
        item_assets[key] = {
            "href": href,
            "type": _MEDIA.get(Path(href).suffix, "application/octet-stream"),
            "roles": ["metadata"],
        }
    links = []
    if training_data:
        links.append({"rel": "derived_from", "href": training_data, "title": "training samples"})
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": extensions,
        "id": f"{metadata['name']}-{metadata['version']}",
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "bbox": [w, s, e, n],
        "properties": props,
        "assets": item_assets,
        "links": links,
    }


def register_model(
    root_url: str,
    model: nn.Module,
    metadata: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    files: list[Path] | None = None,
    storage_options: dict[str, Any] | None = None,
    training_data: str | None = None,
    bbox: tuple[float, float, float, float] = EUROPE_BBOX,
) -> Registered:
    """Store a model with its metrics, plots (`files`) and STAC item; move `latest` to it."""
    store = _Store(root_url, storage_options)
    name, version = str(metadata["name"]), str(metadata["version"])
    prefix = _prefix(name, version)
    blob = model_bytes(model, metadata)
    model_href = store.put(f"{prefix}/model.pt", blob)
    assets: dict[str, str] = {}
    if metrics is not None:
        assets["metrics"] = store.put(f"{prefix}/metrics.json", json.dumps(metrics, indent=2).encode())
    for f in files or []:
        assets[Path(f).stem.replace("_", "-")] = store.put(f"{prefix}/{Path(f).name}", Path(f).read_bytes())
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
    item_href = store.put(f"{prefix}/item.json", json.dumps(item, indent=2).encode())
    store.put(f"models/{name}/latest", json.dumps({"version": version}).encode())
    return Registered(name, version, model_href, item_href, item)


def latest_version(root_url: str, name: str, storage_options: dict[str, Any] | None = None) -> str:
    """The version the `latest` pointer of model `name` names."""
    store = _Store(root_url, storage_options)
    try:
        return str(json.loads(store.get(f"models/{name}/latest"))["version"])
    except (ValueError, KeyError) as e:
        raise RegistryError(f"{store.href(f'models/{name}/latest')} is corrupt; re-register the model") from e


def list_versions(root_url: str, name: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """Registered versions of model `name` (those with an item.json)."""
    store = _Store(root_url, storage_options)
    try:
        found = store.fs.glob(store.path(f"models/{name}/*/item.json"))
    except FileNotFoundError:
        return []
    return sorted(posixpath.basename(posixpath.dirname(p)) for p in found)


def load_registered(
    root_url: str, name: str, version: str = "latest", storage_options: dict[str, Any] | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Module and metadata of a registered model (`latest` follows the pointer)."""
    if version == "latest":
        version = latest_version(root_url, name, storage_options)
    store = _Store(root_url, storage_options)
    key = f"{_prefix(name, version)}/model.pt"
    return model_from_bytes(store.get(key), store.href(key))


def load_item(
    root_url: str, name: str, version: str = "latest", storage_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The STAC item of a registered model."""
    if version == "latest":
        version = latest_version(root_url, name, storage_options)
    return json.loads(_Store(root_url, storage_options).get(f"{_prefix(name, version)}/item.json"))
