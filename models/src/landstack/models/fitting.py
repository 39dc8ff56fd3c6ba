"""Fit one model of each architecture and describe it with its metadata."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from landstack.models.classes import IMPERVIOUS_CLASSES_LAYER, classes_for_labels
from landstack.models.errors import SamplesError
from landstack.models.layers import Ensemble, Standardise
from landstack.models.modelfile import FORMAT_VERSION, build_model
from landstack.models.patches import NODATA_CLASS, PatchSet
from landstack.models.runtime import seed_everything
from landstack.models.splits import holdout_split
from landstack.models.tables import SampleTable
from landstack.models.training import (
    IGNORE_INDEX,
    FitHistory,
    TrainConfig,
    class_weights,
    fit_module,
    masked_mse,
)

TEMPCNN_DEFAULTS: dict[str, Any] = {
    "filters": 64,
    "kernel_size": 5,
    "blocks": 3,
    "dense": 256,
    "dropout": 0.2,
}
UNET_DEFAULTS: dict[str, Any] = {"depth": 3, "width": 32}
IMPERVIOUS_DEFAULTS: dict[str, Any] = {"width": 32, "dilations": [1, 2, 4, 8], "dropout": 0.1}


@dataclass
class Trained:
    """A fitted module, its metadata and how the fit went (one history per ensemble member)."""

    model: nn.Module
    metadata: dict[str, Any]
    histories: list[FitHistory]


def _stats(x: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-feature mean and std over every axis except the channel axis (1), ignoring NaN."""
    moved = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    mean = np.nanmean(moved, axis=1)
    std = np.nanstd(moved, axis=1)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    return [float(v) for v in mean], [float(v) for v in std]


def _set_norm(model: nn.Module, mean: list[float], std: list[float]) -> None:
    for m in model.modules():
        if isinstance(m, Standardise):
            m.set_stats(torch.tensor(mean), torch.tensor(std))


def _base_metadata(
    architecture: str, task: str, hp: dict[str, Any], name: str, version: str
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "architecture": architecture,
        "hyperparameters": hp,
        "task": task,
        "ensemble_size": 1,
        "framework": "pytorch",
        "framework_version": torch.__version__.split("+")[0],
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _val_split(labels: np.ndarray, groups: np.ndarray | None, config: TrainConfig, stratify: bool) -> tuple:
    if config.val_fraction <= 0 or len(labels) < 10:
        return np.arange(len(labels)), np.arange(0)
    return holdout_split(labels, groups, config.val_fraction, config.seed + 1, stratify=stratify)


def fit_tempcnn(
    table: SampleTable,
    config: TrainConfig,
    hyperparameters: dict[str, Any] | None = None,
    classes: list[dict[str, Any]] | None = None,
    name: str = "tempcnn",
    version: str = "0",
) -> Trained:
    """Train a TempCNN on a sample table (labels are class codes)."""
    if not np.issubdtype(table.labels.dtype, np.integer):
        raise SamplesError(
            f"{table.source or 'training table'}: TempCNN needs integer class codes in 'label'"
        )
    hp = {**TEMPCNN_DEFAULTS, **(hyperparameters or {})}
    classes = classes or classes_for_labels(table.labels)
    index = {c["value"]: i for i, c in enumerate(classes)}
    unknown = sorted(set(np.unique(table.labels).tolist()) - set(index))
    if unknown:
        raise SamplesError(f"labels {unknown} are not among the model classes {sorted(index)}")
    y = np.array([index[int(v)] for v in table.labels], dtype=np.int64)
    mean, std = _stats(table.x)
    meta = _base_metadata("TempCNN", "classification", hp, name, version)
    meta["input"] = {
        "features": list(table.features),
        "time_steps": int(table.time_steps),
        "dim_order": ["batch", "feature", "time"],
        "norm": {"mean": mean, "std": std},
    }
    meta["output"] = {"classes": classes, "semantics": "logits over classes; softmax gives probabilities"}
    seed_everything(config.seed)  # the initial weights too, so a run repeats exactly
    model = build_model(meta)
    _set_norm(model, mean, std)
    tr, va = _val_split(y, table.groups, config, stratify=True)
    weights = class_weights(y[tr], len(classes)) if config.class_weighting else None
    loss = nn.CrossEntropyLoss(weight=weights.to(_device_of(config)) if weights is not None else None)
    hist = fit_module(model, loss, table.x[tr], y[tr], config, table.x[va], y[va], select_by_accuracy=True)
    meta["training"] = {"samples": len(table), "epochs": hist.epochs_run, "best_epoch": hist.best_epoch}
    return Trained(model.cpu(), meta, [hist])


def _device_of(config: TrainConfig) -> torch.device:
    from landstack.models.runtime import select_device

    return select_device(config.device)


def fit_patch_model(
    patches: PatchSet,
    config: TrainConfig,
    architecture: str = "UNet",
    hyperparameters: dict[str, Any] | None = None,
    ensemble_size: int = 1,
    classes: list[dict[str, Any]] | None = None,
    name: str = "unet",
    version: str = "0",
) -> Trained:
    """Train a U-Net (regression or segmentation) or the impervious CNN; K>1 trains an averaged ensemble."""
    patches.validate()
    defaults = UNET_DEFAULTS if architecture == "UNet" else IMPERVIOUS_DEFAULTS
    hp = {**defaults, **(hyperparameters or {})}
    task = "regression" if patches.is_regression else "segmentation"
    if architecture == "ImperviousCNN" and task == "regression":
        raise SamplesError(
            "the impervious CNN classifies 4 classes; give integer class codes in the patch set's y"
        )
    meta = _base_metadata(architecture, task, hp, name, version)
    mean, std = _stats(patches.x)
    meta["input"] = {
        "features": list(patches.channels),
        "dim_order": ["batch", "channel", "height", "width"],
        "norm": {"mean": mean, "std": std},
    }
    if task == "regression":
        meta["output"] = {
            "targets": list(patches.targets),
            "scale": 100.0,
            "semantics": "values in 0..100 (percent)",
        }
        y = patches.y.astype(np.float32)
        loss_fn: Any = masked_mse(100.0)
        strat = np.zeros(len(patches), dtype=np.int64)
    else:
        valid = patches.y[patches.y != NODATA_CLASS]
        layer = IMPERVIOUS_CLASSES_LAYER if architecture == "ImperviousCNN" else None
        classes = classes or classes_for_labels(valid, layer)
        index = {c["value"]: i for i, c in enumerate(classes)}
        lut = np.full(256, IGNORE_INDEX, dtype=np.int64)
        for code, i in index.items():
            lut[code] = i
        y = lut[np.clip(patches.y, 0, 255).astype(np.int64)]
        meta["output"] = {"classes": classes, "semantics": "per-pixel logits over classes"}
        strat = np.zeros(len(patches), dtype=np.int64)
    members, histories = [], []
    for k in range(ensemble_size):
        cfg = replace(config, seed=config.seed + 1000 * k)
        seed_everything(cfg.seed)  # the initial weights too, so a run repeats exactly
        single = build_model(meta)
        _set_norm(single, mean, std)
        tr, va = _val_split(strat, patches.groups, cfg, stratify=False)
        if task != "regression":
            w = class_weights(y[tr], len(classes or [])) if cfg.class_weighting else None
            loss_fn = nn.CrossEntropyLoss(
                weight=None if w is None else w.to(_device_of(cfg)), ignore_index=IGNORE_INDEX
            )
        histories.append(
            fit_module(single, loss_fn, patches.x[tr], y[tr], cfg, patches.x[va], y[va], patches=True)
        )
        members.append(single.cpu())
    meta["ensemble_size"] = ensemble_size
    meta["training"] = {
        "patches": len(patches),
        "patch_size": int(patches.x.shape[-1]),
        "epochs": [h.epochs_run for h in histories],
        "best_epoch": [h.best_epoch for h in histories],
    }
    model: nn.Module = members[0] if ensemble_size == 1 else Ensemble(members)
    return Trained(model.eval(), meta, histories)
