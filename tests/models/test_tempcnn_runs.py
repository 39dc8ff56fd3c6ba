"""TempCNN runs end to end: held-out evaluation, final fit, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch
from typer.testing import CliRunner

from landstack.models import load_model
from landstack.models.runs import RunOptions, run_tempcnn
from landstack.models.tables import read_table, table_from_frame
from landstack.models.training import TrainConfig
from landstack.pipelines.cli import app

from .conftest import synthetic_table

torch.set_num_threads(1)
SMALL = {"filters": 16, "dense": 32}
CONFIG = TrainConfig(epochs=20, threads=1, patience=5)


def test_run_writes_model_metrics_and_plots(tmp_path: Path) -> None:
    table = table_from_frame(synthetic_table(n_per_class=40), "synthetic")
    opts = RunOptions(
        config=CONFIG, hyperparameters=SMALL, compare_rf=True, rf_trees=20, name="lc", version="t"
    )
    res = run_tempcnn(table, tmp_path, opts)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert (
        m["overall_accuracy"] > 0.6
    )  # plumbing test: well above chance (0.09); accuracy targets have their own tests
    assert {"overall_accuracy", "kappa", "macro_f1", "per_class", "targets_passed"} <= set(m)
    assert set(m["per_class"]) == {str(c) for c in range(1, 12)}
    assert {
        "name",
        "producer_accuracy",
        "user_accuracy",
        "omission",
        "commission",
        "f1",
        "support",
        "pass",
    } <= set(m["per_class"]["1"])
    # held-out 20 %, grouped: no polygon on both sides
    assert 70 <= m["evaluation"]["test_samples"] <= 110 and m["evaluation"]["grouped"]
    assert m["random_forest"]["trees"] == 20 and "tempcnn_beats_rf" in m
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000
    assert len(pd.read_csv(tmp_path / "confusion_matrix.csv")) == 11
    _model, meta = load_model(tmp_path / "model.pt")
    assert meta["training"]["samples"] == len(table)  # the final model saw every sample
    assert meta["training"]["evaluation"]["overall_accuracy"] == m["overall_accuracy"]
    assert res.trained.metadata["name"] == "lc"


def test_independent_test_samples(tmp_path: Path) -> None:
    train = table_from_frame(synthetic_table(n_per_class=30, seed=1))
    test = table_from_frame(synthetic_table(n_per_class=8, seed=2))
    res = run_tempcnn(train, tmp_path, RunOptions(config=CONFIG, hyperparameters=SMALL), test)
    assert res.metrics["samples"] == len(test)
    assert res.metrics["evaluation"]["train_samples"] == len(train)
    assert res.metrics["overall_accuracy"] > 0.6


def test_cli_tempcnn(tmp_path: Path) -> None:
    samples = tmp_path / "samples.parquet"
    synthetic_table(n_per_class=30, time_steps=8).to_parquet(samples)
    test = tmp_path / "test.csv"
    synthetic_table(n_per_class=6, time_steps=8, seed=9).to_csv(test, index=False)
    out = tmp_path / "run"
    args = ["train", "tempcnn", "--samples", str(samples), "--out", str(out), "--test-samples", str(test)]
    args += ["--epochs", "12", "--filters", "16", "--dense", "32", "--threads", "1", "--version", "v1"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "OA " in res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["samples"] == 66 and m["overall_accuracy"] > 0.45
    assert (out / "model.pt").exists()
    assert read_table(samples).time_steps == 8


def test_cli_reports_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"label": [1, 2], "group": ["a", "b"]}).to_csv(bad, index=False)
    res = CliRunner().invoke(app, ["train", "tempcnn", "--samples", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "no feature columns" in res.output
    assert not (tmp_path / "o" / "model.pt").exists()
