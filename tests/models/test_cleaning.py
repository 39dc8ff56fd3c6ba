"""Label cleaning with cleanlab: flipped labels are found, written to CSV and dropped from the fits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from landstack.models.cleaning import drop_label_issues, label_issues
from landstack.models.runs import RunOptions, run_tempcnn
from landstack.models.tables import table_from_frame
from landstack.models.training import TrainConfig

from .conftest import synthetic_table

torch.set_num_threads(1)
SMALL = {"filters": 16, "dense": 32}
CONFIG = TrainConfig(epochs=20, threads=1, patience=5)


def test_label_cleaning_finds_flipped_labels(tmp_path: Path) -> None:
    clean = synthetic_table(n_per_class=30, seed=3, noise=0.25)
    noisy = clean.copy()
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(noisy), 25, replace=False)
    noisy.loc[flipped, "label"] = (noisy.loc[flipped, "label"] % 11) + 1
    table = table_from_frame(noisy)
    issues = label_issues(table, replace(CONFIG, epochs=15), SMALL, iterations=3, folds=3)
    found = set(issues["index"])
    assert len(found & set(flipped)) >= 10  # flagged in every iteration: conservative, but
    assert len(found - set(flipped)) <= 3  # almost never a clean label
    assert (issues["times_flagged"] == 3).all()
    # the suggested label is mostly the true one
    truth = clean.loc[issues["index"], "label"].to_numpy()
    assert np.mean(issues["suggested_label"].to_numpy() == truth) > 0.7
    assert len(drop_label_issues(table, issues)) == len(table) - len(issues)


def test_run_with_cleaning_writes_csv_and_drops_from_fits(tmp_path: Path) -> None:
    df = synthetic_table(n_per_class=12, time_steps=6, seed=4, noise=0.25)
    df.loc[:5, "label"] = (df.loc[:5, "label"] % 11) + 1
    table = table_from_frame(df)
    opts = RunOptions(
        config=replace(CONFIG, epochs=10),
        hyperparameters={"filters": 8, "dense": 16},
        clean=True,
        clean_iterations=2,
        drop_label_issues=True,
    )
    res = run_tempcnn(table, tmp_path, opts)
    issues = pd.read_csv(tmp_path / "label_issues.csv")
    assert list(issues.columns) == [
        "index",
        "group",
        "label",
        "suggested_label",
        "self_confidence",
        "times_flagged",
        "iterations",
    ]
    m = res.metrics
    assert m["label_cleaning"] == {"iterations": 2, "flagged_every_iteration": len(issues), "dropped": True}
    # evaluation samples are never dropped; the final model is fitted without the flagged ones
    assert res.trained.metadata["training"]["samples"] == len(table) - len(issues)
