"""End-to-end training runs: clean labels, hold out, evaluate, fit the final model, write outputs.

A run writes into one folder: ``model.pt``, ``metrics.json``, plots (``confusion_matrix.png`` /
``.csv`` or ``regression_scatter.png``) and, with label cleaning, ``label_issues.csv``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from landstack.models.classes import classes_for_labels
from landstack.models.cleaning import DEFAULT_ITERATIONS, label_issues, write_label_issues
from landstack.models.errors import SamplesError
from landstack.models.evaluation import (
    classification_metrics,
    regression_metrics,
    write_confusion_matrix,
    write_metrics,
    write_scatter,
)
from landstack.models.fitting import Trained, fit_patch_model, fit_tempcnn
from landstack.models.modelfile import predict_classes, predict_proba, predict_values, save_model
from landstack.models.patches import NODATA_CLASS, PatchSet
from landstack.models.splits import holdout_split
from landstack.models.tables import SampleTable
from landstack.models.training import TrainConfig
from landstack.models.units import plan_units


@dataclass
class RunOptions:
    """What a run does beyond a single fit."""

    config: TrainConfig = field(default_factory=TrainConfig)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    holdout: float = 0.2
    clean: bool = False
    clean_iterations: int = DEFAULT_ITERATIONS
    clean_folds: int = 2
    drop_label_issues: bool = False
    compare_rf: bool = False
    rf_trees: int = 500
    ensemble_size: int = 1
    final_fit: bool = True
    name: str = "model"
    version: str = "0"
    log: Callable[[str], None] | None = None


@dataclass
class RunResult:
    """Outputs of a run."""

    trained: Trained
    metrics: dict[str, Any]
    files: list[Path]


def _say(options: RunOptions, msg: str) -> None:
    if options.log:
        options.log(msg)


def _check_compatible(train: SampleTable, test: SampleTable) -> None:
    if train.features != test.features or train.time_steps != test.time_steps:
        raise SamplesError(
            f"test samples {test.source} have features {test.features} x {test.time_steps} time steps, "
            f"the training samples {train.features} x {train.time_steps}; sample both the same way"
        )


def random_forest_metrics(
    train: SampleTable,
    test: SampleTable,
    classes: list[dict[str, Any]],
    trees: int,
    seed: int,
    threads: int | None,
) -> dict[str, Any]:
    """A scikit-learn random forest on the flattened features of the same split, for comparison."""
    from sklearn.ensemble import RandomForestClassifier

    def flat(t: SampleTable) -> np.ndarray:
        return np.nan_to_num(t.x.reshape(len(t), -1), nan=0.0)

    rf = RandomForestClassifier(
        n_estimators=trees, n_jobs=threads or 1, random_state=seed, class_weight="balanced"
    )
    rf.fit(flat(train), train.labels)
    m = classification_metrics(test.labels, rf.predict(flat(test)), classes)
    return {"trees": trees, **{k: m[k] for k in ("overall_accuracy", "kappa", "macro_f1", "targets_passed")}}


def run_tempcnn(
    table: SampleTable, out_dir: Path, options: RunOptions, test: SampleTable | None = None
) -> RunResult:
    """Train, evaluate (on `test` or a held-out share) and fit the final TempCNN into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    cfg = replace(options.config, log=options.log)
    issues_found = None
    keep = np.ones(len(table), dtype=bool)
    if options.clean:
        _say(options, f"label cleaning: {options.clean_iterations} iterations")
        issues = label_issues(
            table,
            options.config,
            options.hyperparameters,
            options.clean_iterations,
            options.clean_folds,
            options.log,
        )
        files.append(write_label_issues(issues, out_dir / "label_issues.csv"))
        issues_found = len(issues)
        if options.drop_label_issues:  # from every fit, never from the evaluation samples
            keep[issues["index"].to_numpy(dtype=np.int64)] = False
    classes = classes_for_labels(
        np.concatenate([table.labels, test.labels]) if test is not None else table.labels
    )
    usable = table.subset(keep)
    independent = test is not None
    if test is not None:
        _check_compatible(table, test)
        train = usable
    else:
        tr, te = holdout_split(table.labels, table.groups, options.holdout, options.config.seed)
        if len(te) == 0:
            raise SamplesError(f"{table.source}: too few samples ({len(table)}) for a held-out evaluation")
        train, test = table.subset(tr[keep[tr]]), table.subset(te)
    _say(options, f"evaluation fit on {len(train)} samples, testing on {len(test)}")
    evaluated = fit_tempcnn(train, cfg, options.hyperparameters, classes, options.name, options.version)
    predicted = predict_classes(evaluated.model, evaluated.metadata, test.x)
    metrics = classification_metrics(test.labels, predicted, classes)
    metrics["evaluation"] = {
        "train_samples": len(train),
        "test_samples": len(test),
        "test_source": "test samples" if independent else f"held-out {options.holdout:.0%}",
        "grouped": table.groups is not None,
        "seconds_per_epoch": evaluated.histories[0].seconds_per_epoch,
        "epochs": evaluated.histories[0].epochs_run,
        "best_epoch": evaluated.histories[0].best_epoch,
    }
    if issues_found is not None:
        metrics["label_cleaning"] = {
            "iterations": options.clean_iterations,
            "flagged_every_iteration": issues_found,
            "dropped": options.drop_label_issues,
        }
    if options.compare_rf:
        _say(options, f"random forest with {options.rf_trees} trees on the same split")
        rf = random_forest_metrics(
            train, test, classes, options.rf_trees, options.config.seed, options.config.threads
        )
        metrics["random_forest"] = rf
        metrics["tempcnn_beats_rf"] = bool(metrics["overall_accuracy"] > rf["overall_accuracy"])
    files += write_confusion_matrix(metrics, classes, out_dir)
    final = evaluated
    if options.final_fit and not independent:
        epochs = max(1, evaluated.histories[0].best_epoch)
        _say(options, f"final fit on all {len(usable)} samples for {epochs} epochs")
        final_cfg = replace(cfg, epochs=epochs, val_fraction=0.0)
        final = fit_tempcnn(
            usable, final_cfg, options.hyperparameters, classes, options.name, options.version
        )
    final.metadata["training"]["evaluation"] = {
        k: metrics[k] for k in ("overall_accuracy", "kappa", "macro_f1", "targets_passed")
    }
    files.append(save_model(out_dir / "model.pt", final.model, final.metadata))
    files.append(write_metrics(metrics, out_dir / "metrics.json"))
    return RunResult(final, metrics, files)


def run_tempcnn_units(
    table: SampleTable, units: np.ndarray, out_dir: Path, options: RunOptions, min_samples: int = 500
) -> dict[str, RunResult]:
    """One TempCNN per production unit with at least `min_samples` samples, plus a fallback on all samples.

    Each unit's run goes to ``out_dir/<unit>/``; ``out_dir/units.json`` summarises them.
    """
    results: dict[str, RunResult] = {}
    for unit, rows in plan_units(units, min_samples).items():
        _say(options, f"unit {unit}: {len(rows)} samples")
        opts = replace(options, name=f"{options.name}-{unit}")
        results[unit] = run_tempcnn(table.subset(rows), out_dir / unit, opts)
    summary = {
        u: {
            "samples": r.metrics["evaluation"]["train_samples"] + r.metrics["evaluation"]["test_samples"],
            "overall_accuracy": r.metrics["overall_accuracy"],
            "model": f"{u}/model.pt",
        }
        for u, r in results.items()
    }
    write_metrics({"units": summary, "min_samples": min_samples}, out_dir / "units.json")
    return results


def _patch_metrics(
    model: nn.Module, meta: dict[str, Any], test: PatchSet, out_dir: Path
) -> tuple[dict[str, Any], list[Path]]:
    if meta["task"] == "regression":
        pred = predict_values(model, meta, test.x)
        metrics = regression_metrics(test.y, pred)
        metrics["per_target"] = {
            name: regression_metrics(test.y[:, k], pred[:, k])
            for k, name in enumerate(meta["output"]["targets"])
        }
        return metrics, [write_scatter(test.y, pred, metrics, out_dir)]
    classes = meta["output"]["classes"]
    codes = np.array([c["value"] for c in classes])
    pred = codes[np.argmax(predict_proba(model, meta, test.x, batch_size=16), axis=1)]
    valid = test.y != NODATA_CLASS
    metrics = classification_metrics(test.y[valid], pred[valid], classes)
    return metrics, write_confusion_matrix(metrics, classes, out_dir)


def run_patch_model(
    patches: PatchSet,
    out_dir: Path,
    options: RunOptions,
    architecture: str = "UNet",
    test: PatchSet | None = None,
) -> RunResult:
    """Train, evaluate and fit the final U-Net / impervious CNN (optionally an ensemble) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = replace(options.config, log=options.log)
    if test is None:
        labels = np.zeros(len(patches), dtype=np.int64)
        tr, te = holdout_split(labels, patches.groups, options.holdout, options.config.seed, stratify=False)
        if len(te) == 0:
            raise SamplesError(f"too few patches ({len(patches)}) for a held-out evaluation")
        train, test_set = patches.subset(tr), patches.subset(te)
    else:
        if test.channels != patches.channels:
            raise SamplesError(
                f"test patches have channels {test.channels}, training patches {patches.channels}"
            )
        train, test_set = patches, test
    args = (architecture, options.hyperparameters, options.ensemble_size, None, options.name, options.version)
    _say(options, f"evaluation fit on {len(train)} patches, testing on {len(test_set)}")
    evaluated = fit_patch_model(train, cfg, *args)
    metrics, files = _patch_metrics(evaluated.model, evaluated.metadata, test_set, out_dir)
    metrics["evaluation"] = {
        "train_patches": len(train),
        "test_patches": len(test_set),
        "seconds_per_epoch": float(np.mean([h.seconds_per_epoch for h in evaluated.histories])),
        "best_epoch": [h.best_epoch for h in evaluated.histories],
    }
    final = evaluated
    if options.final_fit and train is not patches:
        epochs = max(1, max(h.best_epoch for h in evaluated.histories))
        _say(options, f"final fit on all {len(patches)} patches for {epochs} epochs")
        final = fit_patch_model(patches, replace(cfg, epochs=epochs, val_fraction=0.0), *args)
    files.append(save_model(out_dir / "model.pt", final.model, final.metadata))
    files.append(write_metrics(metrics, out_dir / "metrics.json"))
    return RunResult(final, metrics, files)


def evaluate_model(
    model: nn.Module, metadata: dict[str, Any], test: SampleTable | PatchSet, out_dir: Path
) -> tuple[dict[str, Any], list[Path]]:
    """Metrics and plots (into `out_dir`) of a trained model on independent test samples.

    A TempCNN takes a sample table with the features and time steps it was trained on; the
    U-Net and the impervious CNN take a patch set with its channels.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    inp = metadata["input"]
    if metadata["architecture"] == "TempCNN":
        if not isinstance(test, SampleTable):
            raise SamplesError("a TempCNN is evaluated on a sample table (Parquet/CSV), not on patches")
        if test.features != list(inp["features"]) or test.time_steps != int(inp["time_steps"]):
            raise SamplesError(
                f"test samples {test.source} have features {test.features} x {test.time_steps} time steps, "
                f"the model {inp['features']} x {inp['time_steps']}; sample both the same way"
            )
        classes = metadata["output"]["classes"]
        metrics = classification_metrics(test.labels, predict_classes(model, metadata, test.x), classes)
        return metrics, write_confusion_matrix(metrics, classes, out_dir)
    if not isinstance(test, PatchSet):
        raise SamplesError(f"a {metadata['architecture']} is evaluated on a patch set (.npz), not on a table")
    if len(test.channels) != len(inp["features"]):
        raise SamplesError(
            f"test patches have {len(test.channels)} channels {test.channels}, "
            f"the model {len(inp['features'])} {inp['features']}"
        )
    return _patch_metrics(model, metadata, test, out_dir)
