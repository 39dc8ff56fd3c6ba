"""Which models one server process hosts, and loading their weights and metadata.

The settings name the models (see `settings.py`); every entry resolves to a served name, a
concrete version (``latest`` is followed at start) and the module with its metadata.

A model folder (`model_dir`) is what KServe's storage initializer copies to /mnt/models: either one
registry version as the registry writes it (``models/<name>/<version>/``: ``model.pt`` with the
weights and their metadata, ``item.json`` with the STAC item, metrics and plots), or a release
(``releases/<name>/<release>/``: ``release.json`` and one such version folder per member, e.g. every
production unit's ``<name>-<unit>`` and ``<name>-fallback``), whose members are served side by side
under their registry names. Names and versions come from ``item.json`` / ``release.json`` when the
server starts; the weights load only in `load`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from landstack.model_server.errors import ModelSourceError
from landstack.model_server.settings import ModelServerSettings
from landstack.models.errors import ModelError
from landstack.models.modelfile import load_model
from landstack.models.registry import latest_version, load_registered
from landstack.models.releases import read_manifest
from landstack.storage import ObjectStore, StoreError, layout


@dataclass(frozen=True)
class ModelRef:
    """One model to serve: its served name and where its weights are."""

    name: str
    version: str = "latest"
    url: str | None = None  # a model file instead of the registry
    folder: str | None = None  # a local registry version folder (model.pt, item.json)


@dataclass
class LoadedModel:
    """Weights (eval mode, CPU) and metadata of one served model."""

    name: str
    version: str
    module: nn.Module
    metadata: dict[str, Any]


def parse_ref(text: str) -> ModelRef:
    """``name`` or ``name:version`` (as in LANDSTACK_MODEL_SERVER_MODELS)."""
    name, _, version = text.strip().partition(":")
    if not name:
        raise ModelSourceError(f"model entry {text!r} has no name; write name or name:version")
    return ModelRef(name, version or "latest")


def registered_names(settings: ModelServerSettings, prefix: str) -> list[str]:
    """Names of registered models (those with a `latest` pointer) that start with `prefix`."""
    assert settings.registry_url is not None
    try:
        store = ObjectStore(settings.registry_url, settings.s3())
        keys = store.list(layout.MODELS, suffix="/latest")
    except StoreError as e:
        raise ModelSourceError(f"cannot list the model registry: {e}") from e
    names = sorted({k[len(layout.MODELS) + 1 : -len("/latest")] for k in keys})
    return [n for n in names if n.startswith(prefix) and "/" not in n]


def model_refs(settings: ModelServerSettings) -> list[ModelRef]:
    """Every model the settings ask for, in order, without duplicates."""
    if settings.model_url:
        return [ModelRef(settings.model_name, "file", settings.model_url)]
    if settings.model_dir:
        return folder_refs(settings)
    refs = [parse_ref(t) for t in settings.models]
    if settings.registry_prefix is not None:
        found = registered_names(settings, settings.registry_prefix)
        if not found:
            raise ModelSourceError(
                f"no registered model name starts with {settings.registry_prefix!r} in "
                f"{settings.registry_url}; register one or change LANDSTACK_MODEL_SERVER_REGISTRY_PREFIX"
            )
        refs += [ModelRef(n) for n in found]
    if not refs:
        refs = [ModelRef(settings.model_name, settings.model_version)]
    seen: dict[str, ModelRef] = {}
    for r in refs:
        if r.name in seen and seen[r.name] != r:
            raise ModelSourceError(
                f"model {r.name!r} is listed twice with versions {seen[r.name].version!r} and "
                f"{r.version!r}; one process serves one version per name"
            )
        seen[r.name] = r
    return list(seen.values())


_STORAGE_HINT = (
    "set the InferenceService's storageUri to a registry version folder such as "
    "s3://bucket/models/<name>/<version>/ or a release folder s3://bucket/releases/<name>/<release>/ "
    "(KServe copies it to /mnt/models)"
)


def folder_refs(settings: ModelServerSettings) -> list[ModelRef]:
    """The models in `settings.model_dir`: a release's members, or the one model of a version folder.

    A name given in the settings must be the folder's model, or the release's name (clients
    address the models by name).
    """
    assert settings.model_dir is not None
    folder = Path(settings.model_dir)
    if not (folder / layout.RELEASE_MANIFEST).is_file():
        return [folder_ref(settings)]
    try:
        name, release, members = read_manifest(folder)
    except ModelError as e:
        raise ModelSourceError(str(e)) from e
    if "model_name" in settings.model_fields_set and settings.model_name != name:
        raise ModelSourceError(
            f"release folder {folder} is release {release!r} of {name!r}, but the settings ask for "
            f"{settings.model_name!r}; point the storage URI at releases/{settings.model_name}/"
            "<release>/ or change LANDSTACK_MODEL_SERVER_MODEL_NAME"
        )
    return [ModelRef(m.name, m.version, folder=str(folder / m.name)) for m in members]


def folder_ref(settings: ModelServerSettings) -> ModelRef:
    """The model in the version folder `settings.model_dir`: name and version from its item.json.

    A name given in the settings must be the folder's model (clients address the model by name).
    """
    assert settings.model_dir is not None
    folder = Path(settings.model_dir)
    if not folder.is_dir():
        raise ModelSourceError(f"model folder {folder} does not exist; {_STORAGE_HINT}")
    if not (folder / "model.pt").is_file():
        nested = sorted(p.parent.name for p in folder.glob("*/model.pt"))
        found = sorted(p.name for p in folder.iterdir())[:10]
        what = (
            f"version folders {nested}: the storage URI names a model's folder, add the version; or "
            f"a release folder without its {layout.RELEASE_MANIFEST}, copy it again"
            if nested
            else f"found {found or 'nothing'}"
        )
        raise ModelSourceError(
            f"model folder {folder} holds no model.pt nor {layout.RELEASE_MANIFEST} ({what}); {_STORAGE_HINT}"
        )
    name, version = settings.model_name, ""
    item_path = folder / "item.json"
    if item_path.is_file():
        try:
            props = json.loads(item_path.read_text())["properties"]
            name, version = str(props["mlm:name"]), str(props["version"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ModelSourceError(
                f"{item_path} is not a registry item ({e}); copy the whole version folder again"
            ) from e
        if "model_name" in settings.model_fields_set and settings.model_name != name:
            raise ModelSourceError(
                f"model folder {folder} holds model {name!r} version {version!r}, but the settings ask "
                f"for {settings.model_name!r}; point the storage URI at models/{settings.model_name}/"
                "<version>/ or change LANDSTACK_MODEL_SERVER_MODEL_NAME"
            )
    return ModelRef(name, version, folder=str(folder))


def load_ref(settings: ModelServerSettings, ref: ModelRef) -> LoadedModel:
    """Load one model's weights and metadata; errors name the model and the source."""
    try:
        if ref.folder:
            module, metadata = load_model(Path(ref.folder) / "model.pt")
            version = ref.version or str(metadata.get("version", "1"))
        elif ref.url:
            module, metadata = load_model(ref.url, settings.s3())
            version = str(metadata.get("version", "1"))
        else:
            assert settings.registry_url is not None
            version = ref.version
            if version == "latest":
                version = latest_version(settings.registry_url, ref.name, settings.s3())
            module, metadata = load_registered(settings.registry_url, ref.name, version, settings.s3())
    except ModelError as e:
        raise ModelSourceError(f"cannot load model {ref.name!r}: {e}") from e
    return LoadedModel(ref.name, version, module, metadata)
