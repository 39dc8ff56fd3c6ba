"""Fixtures of the step tests: a file:// object store behind LANDSTACK_STORE_URL, and `step run`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from landstack.pipelines.settings import get_settings
from landstack.storage import ObjectStore


@dataclass
class StepRun:
    """What `landstack step run` did."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> dict[str, Any]:
        assert self.exit_code == 0, self.stderr
        return dict(json.loads(self.stdout))


def step_run(name: str, data: Any, tmp: Path, raw: str | None = None) -> StepRun:
    """`landstack step run NAME --input FILE` with `data` as JSON (or the `raw` text) in FILE."""
    from landstack.pipelines.cli import app

    path = tmp / f"input-{name}-{len(list(tmp.glob('input-*')))}.json"
    path.write_text(raw if raw is not None else json.dumps(data))
    res = CliRunner().invoke(app, ["step", "run", name, "--input", str(path)])
    return StepRun(res.exit_code, res.stdout, res.stderr)


def snapshot(root: Path) -> dict[str, int]:
    """Every file under `root` with its modification time (ns): equal snapshots mean nothing was written."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def use_store(monkeypatch: pytest.MonkeyPatch, root: Path) -> ObjectStore:
    """Point LANDSTACK_STORE_URL at `root` (settings are re-read)."""
    monkeypatch.setenv("LANDSTACK_STORE_URL", root.as_uri())
    get_settings.cache_clear()
    return get_settings().store()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ObjectStore]:
    """An empty file:// object store as the configured store."""
    yield use_store(monkeypatch, tmp_path / "store")
    get_settings.cache_clear()


def class_table(
    n_per_class: int = 24, classes: tuple[int, ...] = (1, 2, 3), steps: int = 6, seed: int = 0
) -> pd.DataFrame:
    """A small wide training table of separable classes (label, group, x, y, <feature>_<t>).

    Samples of class c lie west (x < 4.2e6) for even groups and east for odd ones, so polygons
    can split them into production units.
    """
    rng = np.random.default_rng(seed)
    features = ("B04", "B08", "NDVI")
    t = np.arange(steps) / steps
    rows, labels, groups, xs, ys = [], [], [], [], []
    for c in classes:
        for i in range(n_per_class):
            curve = np.array(
                [np.sin(2 * np.pi * (t + 0.3 * c + 0.1 * f)) * (1 + 0.3 * c) for f in range(len(features))]
            )
            rows.append((curve + rng.normal(0, 0.15, curve.shape)).ravel())
            labels.append(c)
            group = c * 100 + i // 4
            groups.append(group)
            xs.append((4.1e6 if group % 2 == 0 else 4.3e6) + rng.normal(0, 100))
            ys.append(3.0e6 + rng.normal(0, 100))
    cols = [f"{f}_{i}" for f in features for i in range(steps)]
    df = pd.DataFrame(np.array(rows, dtype=np.float32), columns=cols)
    df.insert(0, "y", ys)
    df.insert(0, "x", xs)
    df.insert(0, "group", np.array(groups, dtype=np.int64))
    df.insert(0, "label", labels)
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def west_polygon() -> dict[str, Any]:
    """A GeoJSON unit 'west' (EPSG:3035 metres) holding the even groups of class_table."""
    ring = [[4.0e6, 2.9e6], [4.2e6, 2.9e6], [4.2e6, 3.1e6], [4.0e6, 3.1e6], [4.0e6, 2.9e6]]
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "west",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        ],
    }
