"""Label cleaning with cleanlab: samples whose label disagrees with out-of-sample predictions.

Each iteration splits the samples into folds (grouped when groups are known), trains a TempCNN on
all but one fold and predicts the held-out fold, so every sample gets out-of-sample class
probabilities; cleanlab's `find_label_issues` then flags suspicious labels. Only samples flagged
in every iteration are reported (robust against one unlucky split).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues

from landstack.models.classes import classes_for_labels
from landstack.models.fitting import fit_tempcnn
from landstack.models.modelfile import predict_proba
from landstack.models.splits import kfold_indices
from landstack.models.tables import SampleTable
from landstack.models.training import TrainConfig

DEFAULT_ITERATIONS = 15


def label_issues(
    table: SampleTable,
    config: TrainConfig,
    hyperparameters: dict[str, Any] | None = None,
    iterations: int = DEFAULT_ITERATIONS,
    folds: int = 2,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """One row per sample flagged in every iteration.

    Columns: ``index`` (row in the table), ``group`` (when known), ``label``, ``suggested_label``
    (most probable class averaged over iterations), ``self_confidence`` (mean probability of the
    given label), ``times_flagged``, ``iterations``.
    """
    classes = classes_for_labels(table.labels)
    codes = np.array([c["value"] for c in classes])
    index = {int(c): i for i, c in enumerate(codes)}
    y = np.array([index[int(v)] for v in table.labels])
    flagged = np.zeros(len(table), dtype=np.int64)
    prob_sum = np.zeros((len(table), len(codes)), dtype=np.float64)
    for it in range(iterations):
        probs = np.zeros((len(table), len(codes)), dtype=np.float32)
        for fold, test in enumerate(kfold_indices(y, table.groups, folds, config.seed + it)):
            train = np.setdiff1d(np.arange(len(table)), test)
            cfg = replace(config, seed=config.seed + 97 * it + fold, log=None)
            trained = fit_tempcnn(table.subset(train), cfg, hyperparameters, classes=classes)
            probs[test] = predict_proba(trained.model, trained.metadata, table.x[test])
        issues = find_label_issues(labels=y, pred_probs=probs, filter_by="prune_by_noise_rate")
        flagged += issues.astype(np.int64)
        prob_sum += probs
        if log:
            log(f"label cleaning iteration {it + 1}/{iterations}: {int(issues.sum())} samples flagged")
    every = np.flatnonzero(flagged == iterations)
    mean_probs = prob_sum / max(iterations, 1)
    out = pd.DataFrame(
        {
            "index": every,
            "label": table.labels[every],
            "suggested_label": codes[np.argmax(mean_probs[every], axis=1)] if len(every) else [],
            "self_confidence": mean_probs[every, y[every]] if len(every) else [],
            "times_flagged": flagged[every],
            "iterations": iterations,
        }
    )
    if table.groups is not None:
        out.insert(1, "group", table.groups[every])
    return out


def write_label_issues(issues: pd.DataFrame, path: Path) -> Path:
    """The flagged samples as CSV (written atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    issues.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def drop_label_issues(table: SampleTable, issues: pd.DataFrame) -> SampleTable:
    """The table without the flagged rows."""
    keep = np.ones(len(table), dtype=bool)
    keep[issues["index"].to_numpy(dtype=np.int64)] = False
    return table.subset(keep)
