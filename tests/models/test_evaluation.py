"""Accuracy figures against hand-computed values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from landstack.models.evaluation import (
    classification_metrics,
    regression_metrics,
    write_confusion_matrix,
    write_metrics,
)

CLASSES = [
    {"value": 1, "name": "Sealed"},
    {"value": 10, "name": "Water"},
    {"value": 11, "name": "Snow and ice"},
]


def test_classification_metrics_by_hand() -> None:
    ref = np.array([1] * 10 + [10] * 10)
    pred = np.array([1] * 8 + [10] * 2 + [10] * 10)
    m = classification_metrics(ref, pred, CLASSES)
    assert m["overall_accuracy"] == pytest.approx(0.9)
    # pe = (10*8 + 10*12) / 400 = 0.5 -> kappa = 0.4 / 0.5
    assert m["kappa"] == pytest.approx(0.8)
    sealed, water = m["per_class"]["1"], m["per_class"]["10"]
    assert sealed["producer_accuracy"] == pytest.approx(0.8) and sealed["user_accuracy"] == pytest.approx(1.0)
    assert sealed["omission"] == pytest.approx(0.2) and sealed["commission"] == pytest.approx(0.0)
    assert water["user_accuracy"] == pytest.approx(10 / 12) and water["commission"] == pytest.approx(2 / 12)
    assert sealed["f1"] == pytest.approx(2 * 0.8 / 1.8)
    assert sealed["pass"] is False and water["pass"] is False  # omission 20 % and commission 16.7 % > 15 %
    assert m["per_class"]["11"]["pass"] is None and m["per_class"]["11"]["support"] == 0
    assert m["macro_f1"] == pytest.approx((2 * 0.8 / 1.8 + 2 * (10 / 12) / (1 + 10 / 12)) / 2)
    assert m["targets_passed"] is False and m["oa_passed"] is True
    assert m["confusion_matrix"]["rows_reference_cols_predicted"] == [[8, 2, 0], [0, 10, 0], [0, 0, 0]]


def test_perfect_classification_passes_targets() -> None:
    ref = np.array([1, 10, 11] * 5)
    m = classification_metrics(ref, ref, CLASSES)
    assert m["targets_passed"] is True and m["kappa"] == pytest.approx(1.0)


def test_regression_metrics_by_hand() -> None:
    ref = np.array([0.0, 50.0, 100.0, np.nan])
    pred = np.array([10.0, 50.0, 90.0, 5.0])
    m = regression_metrics(ref, pred)
    assert m["samples"] == 3
    assert m["mae"] == pytest.approx(20 / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(200 / 3))
    assert m["bias"] == pytest.approx(0.0)
    assert m["r2"] == pytest.approx(1 - 200 / 5000)


def test_confusion_matrix_files(tmp_path: Path) -> None:
    ref = np.array([1, 1, 10, 11])
    m = classification_metrics(ref, np.array([1, 10, 10, 11]), CLASSES)
    csv, png = write_confusion_matrix(m, CLASSES, tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = csv.read_text().splitlines()
    assert lines[1].split(",")[1:] == ["1", "1", "0"]
    write_metrics(m, tmp_path / "metrics.json")
    assert json.loads((tmp_path / "metrics.json").read_text())["per_class"]["1"]["support"] == 2
