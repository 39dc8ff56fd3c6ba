"""landstack.models: TempCNN, U-Net and the impervious CNN; training, label cleaning, evaluation, registry.

Entry points for consumers:

- :func:`load_model` (path or URL) / :func:`load_registered` (registry) -> (module, metadata);
- :func:`predict_proba` (N, F, T) -> (N, C), :func:`predict_values` for regression;
- :func:`inference_module` for a tensor-in/tensor-out module (probabilities or values).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from landstack.models.errors import (
    InputShapeError,
    ModelError,
    ModelFileError,
    RegistryError,
    SamplesError,
    UnitsError,
)

# torch and its friends load only when a model function is first used, so that importing the
# errors (CLI start-up, services) stays cheap.
_LAZY = {
    "inference_module": "modelfile",
    "load_model": "modelfile",
    "predict_classes": "modelfile",
    "predict_proba": "modelfile",
    "predict_values": "modelfile",
    "save_model": "modelfile",
    "load_item": "registry",
    "load_registered": "registry",
    "register_model": "registry",
}

if TYPE_CHECKING:
    from landstack.models.modelfile import (
        inference_module,
        load_model,
        predict_classes,
        predict_proba,
        predict_values,
        save_model,
    )
    from landstack.models.registry import load_item, load_registered, register_model


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"landstack.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'landstack.models' has no attribute {name!r}")


__all__ = [
    "InputShapeError",
    "ModelError",
    "ModelFileError",
    "RegistryError",
    "SamplesError",
    "UnitsError",
    "inference_module",
    "load_item",
    "load_model",
    "load_registered",
    "predict_classes",
    "predict_proba",
    "predict_values",
    "register_model",
    "save_model",
]
