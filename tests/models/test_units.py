"""Production units from the EEA 10 km biogeographical grid and from polygons; one model per unit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from landstack.models.errors import UnitsError
from landstack.models.runs import RunOptions, run_tempcnn_units
from landstack.models.tables import table_from_frame
from landstack.models.training import TrainConfig
from landstack.models.units import (
    FALLBACK,
    cell_code,
    plan_units,
    read_biogeo_cells,
    units_from_grid,
    units_from_polygons,
)

from .conftest import synthetic_table

torch.set_num_threads(1)
GRID = "data/grids/eea-reference-grid-10km-hdarticle17range"


def test_cell_codes() -> None:
    codes = cell_code(np.array([5_205_000.0, 4_000_000.0]), np.array([2_029_999.0, 3_100_000.0]))
    assert codes.tolist() == ["10kmE520N202", "10kmE400N310"]


def test_biogeographical_regions_from_the_eea_grid(shared_dir: Path) -> None:
    cells = read_biogeo_cells(shared_dir / GRID)
    assert cells["10kmE520N202"] == "ALP"
    assert len(cells) > 100_000
    xy = np.array([[5_205_000.0, 2_025_000.0], [-9e6, -9e6]])
    assert units_from_grid(cells, xy).tolist() == ["ALP", ""]


def test_missing_grid_is_named(tmp_path: Path) -> None:
    with pytest.raises(UnitsError, match="does not exist"):
        read_biogeo_cells(tmp_path)


def test_polygon_units_with_holes(tmp_path: Path) -> None:
    square = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]
    hole = [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"unit": "north"},
                "geometry": {"type": "Polygon", "coordinates": [square, hole]},
            },
            {
                "type": "Feature",
                "properties": {"unit": "south"},
                "geometry": {
                    "type": "MultiPolygon",
                    "coordinates": [[[[20, 0], [30, 0], [30, 5], [20, 5], [20, 0]]]],
                },
            },
        ],
    }
    path = tmp_path / "units.geojson"
    path.write_text(json.dumps(doc))
    xy = np.array([[1, 1], [5, 5], [25, 2], [50, 50]], dtype=float)
    assert units_from_polygons(path, xy).tolist() == ["north", "", "south", ""]


def test_plan_keeps_big_units_and_a_fallback() -> None:
    units = np.array(["A"] * 5 + ["B"] * 2 + [""] * 3, dtype=object)
    plan = plan_units(units, min_samples=3)
    assert set(plan) == {"A", FALLBACK}
    assert plan["A"].tolist() == [0, 1, 2, 3, 4] and len(plan[FALLBACK]) == 10


def test_one_model_per_unit(tmp_path: Path) -> None:
    table = table_from_frame(synthetic_table(n_per_class=20, time_steps=6))
    assert table.xy is not None
    units = np.where(table.xy[:, 0] < 4.25e6, "west", "east").astype(object)
    opts = RunOptions(
        config=TrainConfig(epochs=3, threads=1), hyperparameters={"filters": 8, "dense": 16}, name="lc"
    )
    results = run_tempcnn_units(table, units, tmp_path, opts, min_samples=80)
    assert FALLBACK in results and len(results) >= 2
    summary = json.loads((tmp_path / "units.json").read_text())["units"]
    assert summary[FALLBACK]["samples"] == len(table)
    for unit in results:
        assert (tmp_path / unit / "model.pt").exists() and (tmp_path / unit / "metrics.json").exists()
    assert results[FALLBACK].trained.metadata["name"] == "lc-fallback"


def test_cli_units_from_polygons(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from landstack.pipelines.cli import app

    samples = tmp_path / "s.parquet"
    synthetic_table(n_per_class=12, time_steps=5).to_parquet(samples)
    west = [[3.9e6, 2.7e6], [4.25e6, 2.7e6], [4.25e6, 3.3e6], [3.9e6, 3.3e6], [3.9e6, 2.7e6]]
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "west",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": [west]},
            }
        ],
    }
    units = tmp_path / "units.geojson"
    units.write_text(json.dumps(doc))
    args = [
        "train",
        "tempcnn",
        "--samples",
        str(samples),
        "--out",
        str(tmp_path / "run"),
        "--units",
        str(units),
    ]
    args += ["--min-unit-samples", "30", "--epochs", "2", "--filters", "8", "--dense", "16", "--threads", "1"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "run" / "units.json").read_text())["units"]
    assert set(summary) == {"west", FALLBACK}
    assert (tmp_path / "run" / "west" / "model.pt").exists()
