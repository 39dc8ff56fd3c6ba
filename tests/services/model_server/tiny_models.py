"""Tiny TempCNN, U-Net and impervious CNN registered into a temporary registry (for server tests).

Loaded by path from the client tests too, so the same three models are built in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from landstack.models.modelfile import build_model
from landstack.models.registry import register_model

FEATURES = ["B01", "B03", "B04", "B05", "B08", "B09", "B11", "B12", "NDVI", "NDWI", "NDMI", "NBR"]
TEMPCNN = "tempcnn-test"
UNET = "unet-test"
IMPERVIOUS = "impervious-test"


def _base(name: str, arch: str, task: str, hp: dict[str, Any], features: list[str]) -> dict[str, Any]:
    return {
        "format_version": 1,
        "name": name,
        "version": "0.0.1",
        "architecture": arch,
        "hyperparameters": hp,
        "task": task,
        "ensemble_size": 1,
        "framework": "pytorch",
        "framework_version": torch.__version__.split("+")[0],
        "input": {
            "features": features,
            "dim_order": ["batch", "feature", "time"]
            if arch == "TempCNN"
            else ["batch", "channel", "y", "x"],
            "norm": {"mean": [0.0] * len(features), "std": [1.0] * len(features)},
        },
        "output": {},
    }


def metadata(name: str) -> dict[str, Any]:
    """Metadata of one of the three tiny models."""
    if name == TEMPCNN:
        m = _base(name, "TempCNN", "classification", {"filters": 8, "dense": 16}, FEATURES)
        m["input"]["time_steps"] = 54
        m["output"] = {
            "classes": [{"value": v, "name": f"class {v}"} for v in range(1, 12)],
            "semantics": "class probabilities",
        }
    elif name == UNET:
        m = _base(name, "UNet", "regression", {"depth": 2, "width": 8}, ["q10", "q50", "q90", "ndvi"])
        m["output"] = {"targets": ["imd"], "scale": 100.0, "semantics": "imperviousness density %"}
    elif name == IMPERVIOUS:
        m = _base(name, "ImperviousCNN", "segmentation", {"width": 8, "dilations": [1, 2]}, FEATURES[:6])
        m["output"] = {
            "classes": [
                {"value": v, "name": n} for v, n in enumerate(["other", "impervious", "veg", "water"])
            ],
            "semantics": "class probabilities",
        }
    else:
        raise KeyError(name)
    return m


def _randomise_norms(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial batch-norm statistics, so that folding is really exercised."""
    g = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            n = mod.num_features
            assert mod.running_mean is not None and mod.running_var is not None
            mod.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            mod.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(n, generator=g) * 0.2)


def build(name: str, seed: int = 0) -> tuple[torch.nn.Module, dict[str, Any]]:
    torch.manual_seed(seed)
    meta = metadata(name)
    model = build_model(meta)
    _randomise_norms(model, seed)
    return model.eval(), meta


def register_all(root: Path) -> dict[str, tuple[torch.nn.Module, dict[str, Any]]]:
    """Register the three models under `root` (file://); returns module and metadata by name."""
    out = {}
    for i, name in enumerate((TEMPCNN, UNET, IMPERVIOUS)):
        model, meta = build(name, seed=i)
        register_model(root.as_uri(), model, meta)
        out[name] = (model, meta)
    return out
