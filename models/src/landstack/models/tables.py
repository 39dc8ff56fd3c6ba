"""Training tables of the sampling step: one row per sample, wide.

Columns: ``label`` (int class code, or a float 0..100 for regression tables), optional ``group``
(object / polygon id; grouped splits keep a group on one side), optional ``x``, ``y`` (EPSG:3035
metres) and feature columns ``<feature>_<t>`` (e.g. ``B01_0 .. B01_53``, ``NDVI_0 .. NDVI_53``).
Features are the distinct prefixes in column order; the time-step count is the number of suffixes,
which must be the same 0..T-1 for every feature. Parquet (``.parquet``, ``.pq``) or CSV.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from landstack.models.errors import SamplesError

_FEATURE = re.compile(r"^(?P<name>.+)_(?P<t>\d+)$")
_RESERVED = {"label", "group", "x", "y"}


@dataclass
class SampleTable:
    """Samples as arrays: x (N, F, T) float32, labels (N,), optional groups and coordinates."""

    x: np.ndarray
    labels: np.ndarray
    features: list[str]
    time_steps: int
    groups: np.ndarray | None = None
    xy: np.ndarray | None = None
    source: str = ""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: np.ndarray) -> SampleTable:
        """Rows `index` (positions or a boolean mask) as a new table."""
        return SampleTable(
            x=self.x[index],
            labels=self.labels[index],
            features=self.features,
            time_steps=self.time_steps,
            groups=None if self.groups is None else self.groups[index],
            xy=None if self.xy is None else self.xy[index],
            source=self.source,
        )


def read_table(path: str | Path) -> SampleTable:
    """Read a Parquet or CSV training table into arrays (see the module docstring for the format)."""
    p = Path(path)
    if not p.exists():
        raise SamplesError(f"training table {p} does not exist; pass the file written by the sampling step")
    try:
        if p.suffix.lower() in {".parquet", ".pq"}:
            df = pd.read_parquet(p)
        elif p.suffix.lower() in {".csv", ".txt"}:
            df = pd.read_csv(p)
        else:
            raise SamplesError(f"training table {p}: unknown format {p.suffix!r}; use .parquet or .csv")
    except SamplesError:
        raise
    except Exception as e:
        raise SamplesError(f"cannot read training table {p}: {e}") from e
    return table_from_frame(df, source=str(p))


def parse_feature_columns(columns: list[str]) -> tuple[list[str], int, list[str]]:
    """Feature names, time-step count and the ordered column list (feature-major, then time)."""
    steps: dict[str, set[int]] = {}
    for col in columns:
        if col in _RESERVED:
            continue
        m = _FEATURE.match(col)
        if m is None:
            continue
        steps.setdefault(m["name"], set()).add(int(m["t"]))
    if not steps:
        raise SamplesError(
            "training table has no feature columns; expected columns named <feature>_<t>, e.g. B01_0, NDVI_12"
        )
    features = list(steps)
    counts = {f: len(s) for f, s in steps.items()}
    t = max(counts.values())
    bad = [f for f, s in steps.items() if s != set(range(t))]
    if bad:
        raise SamplesError(
            f"training table: features {bad} do not have time steps 0..{t - 1} like the others; "
            "every feature needs the same time steps"
        )
    ordered = [f"{f}_{i}" for f in features for i in range(t)]
    return features, t, ordered


def table_from_frame(df: pd.DataFrame, source: str = "") -> SampleTable:
    """Arrays from a wide DataFrame (the sampling step's format)."""
    name = source or "training table"
    if "label" not in df.columns:
        raise SamplesError(f"{name} has no 'label' column; add the class code (or target value) per sample")
    if len(df) == 0:
        raise SamplesError(f"{name} has no rows")
    features, t, ordered = parse_feature_columns([str(c) for c in df.columns])
    values = df[ordered].to_numpy(dtype=np.float32, na_value=np.nan)
    x = values.reshape(len(df), len(features), t)
    labels = df["label"].to_numpy()
    if (
        np.issubdtype(labels.dtype, np.floating)
        and np.all(np.isfinite(labels))
        and np.all(labels == np.round(labels))
    ):
        labels = labels.astype(np.int64)
    if pd.isna(df["label"]).any():
        raise SamplesError(f"{name}: {int(pd.isna(df['label']).sum())} rows have no label; drop or fill them")
    groups = df["group"].to_numpy() if "group" in df.columns else None
    xy = df[["x", "y"]].to_numpy(dtype=np.float64) if {"x", "y"} <= set(df.columns) else None
    return SampleTable(
        x=x, labels=labels, features=features, time_steps=t, groups=groups, xy=xy, source=source
    )


def table_to_frame(table: SampleTable) -> pd.DataFrame:
    """The wide DataFrame of a SampleTable (inverse of table_from_frame)."""
    n, f, t = table.x.shape
    data: dict[str, np.ndarray] = {"label": table.labels}
    if table.groups is not None:
        data["group"] = table.groups
    if table.xy is not None:
        data["x"], data["y"] = table.xy[:, 0], table.xy[:, 1]
    flat = table.x.reshape(n, f * t)
    cols = [f"{name}_{i}" for name in table.features for i in range(t)]
    frame = pd.DataFrame(data)
    return pd.concat([frame, pd.DataFrame(flat, columns=cols)], axis=1)
