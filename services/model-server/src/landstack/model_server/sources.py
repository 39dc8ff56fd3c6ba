"""Which models one server process hosts, and loading their weights and metadata.

The settings name the models (see `settings.py`); every entry resolves to a served name, a
concrete version (``latest`` is followed at start) and the module with its metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from landstack.model_server.errors import ModelSourceError
from landstack.model_server.settings import ModelServerSettings
from landstack.models.errors import ModelError
from landstack.models.modelfile import load_model
from landstack.models.registry import latest_version, load_registered
from landstack.storage import ObjectStore, StoreError, layout


@dataclass(frozen=True)
class ModelRef:
    """One model to serve: its served name and where its weights are."""

    name: str
    version: str = "latest"
    url: str | None = None  # a model file instead of the registry


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


def load_ref(settings: ModelServerSettings, ref: ModelRef) -> LoadedModel:
    """Load one model's weights and metadata; errors name the model and the source."""
    try:
        if ref.url:
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
