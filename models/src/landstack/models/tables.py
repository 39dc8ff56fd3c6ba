"""Training tables of the sampling step: one row per sample, wide.

Columns: ``label`` (int class code, or a float 0..100 for regression tables), optional ``group``
(object / polygon id; grouped splits keep a group on one side), optional ``x``, ``y`` (EPSG:3035
metres) and feature columns ``<feature>_<t>`` (e.g. ``B01_0 .. B01_53``, ``NDVI_0 .. NDVI_53``).
Features are the distinct prefixes in column order; the time-step count is the number of suffixes,
which must be the same 0..T-1 for every feature. Parquet (``.parquet``, ``.pq``) or CSV.

Reading checks the format (a CSV renamed to .parquet is named as such), the column types (numeric
label, features, x and y; no empty group) and, for classification tables, the label codes against
the product's classes in the catalogue and the least number of classes and samples per class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from landstack.models.errors import LabelError, SamplesError

_FEATURE = re.compile(r"^(?P<name>.+)_(?P<t>\d+)$")
_RESERVED = {"label", "group", "x", "y"}
_PARQUET_MAGIC = b"PAR1"
MIN_CLASSES = 2
MIN_SAMPLES_PER_CLASS = 2
AUTO = "auto"


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


def read_table(path: str | Path, classes: str | None = None) -> SampleTable:
    """Read a Parquet or CSV training table into arrays (see the module docstring for the format).

    With `classes` (a catalogue layer id, or "auto" for the land-cover or impervious-class layer
    the codes belong to) the labels are checked as class codes with `check_classes`.
    """
    p = Path(path)
    if not p.exists():
        raise SamplesError(f"training table {p} does not exist; pass the file written by the sampling step")
    if not p.is_file():
        raise SamplesError(f"training table {p} is a folder; pass the Parquet or CSV file")
    suffix = p.suffix.lower()
    if suffix not in {".parquet", ".pq", ".csv", ".txt"}:
        raise SamplesError(f"training table {p}: unknown format {p.suffix!r}; use .parquet or .csv")
    try:
        if suffix in {".parquet", ".pq"}:
            _require_parquet(p)
            df = pd.read_parquet(p)
        else:
            _require_text(p)
            df = pd.read_csv(p)
    except SamplesError:
        raise
    except Exception as e:
        raise SamplesError(
            f"cannot read training table {p}: {e}; write it again with the sampling step"
        ) from e
    table = table_from_frame(df, source=str(p))
    if classes is not None:
        check_classes(table, None if classes == AUTO else classes)
    return table


def _require_parquet(p: Path) -> None:
    with p.open("rb") as f:
        head = f.read(4)
        f.seek(max(p.stat().st_size - 4, 0))
        tail = f.read(4)
    if head != _PARQUET_MAGIC or tail != _PARQUET_MAGIC:
        looks = " (it looks like CSV text)" if b"," in head or head.isascii() else ""
        raise SamplesError(
            f"training table {p} is not a Parquet file{looks}; write it with DataFrame.to_parquet "
            "or give a CSV file the .csv suffix"
        )


def _require_text(p: Path) -> None:
    with p.open("rb") as f:
        head = f.read(4096)
    if head.startswith(_PARQUET_MAGIC) or b"\x00" in head:
        raise SamplesError(f"training table {p} is binary, not CSV; give a Parquet file the .parquet suffix")


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


def _check_types(df: pd.DataFrame, ordered: list[str], name: str) -> None:
    """Numeric label, features and coordinates; a group on every row."""
    numeric = ["label", *(c for c in ("x", "y") if c in df.columns), *ordered]
    bad = [
        f"{c} ({df[c].dtype})"
        for c in numeric
        if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])
    ]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise SamplesError(f"{name}: columns must hold numbers, but {shown} do not; fix these columns")
    if "group" in df.columns and pd.isna(df["group"]).any():
        raise SamplesError(
            f"{name}: {int(pd.isna(df['group']).sum())} rows have no group; fill or drop the column"
        )


def table_from_frame(df: pd.DataFrame, source: str = "") -> SampleTable:
    """Arrays from a wide DataFrame (the sampling step's format)."""
    name = source or "training table"
    if "label" not in df.columns:
        raise SamplesError(f"{name} has no 'label' column; add the class code (or target value) per sample")
    if len(df) == 0:
        raise SamplesError(f"{name} has no rows")
    features, t, ordered = parse_feature_columns([str(c) for c in df.columns])
    _check_types(df, ordered, name)
    if pd.isna(df["label"]).any():
        raise SamplesError(f"{name}: {int(pd.isna(df['label']).sum())} rows have no label; drop or fill them")
    values = df[ordered].to_numpy(dtype=np.float32, na_value=np.nan)
    x = values.reshape(len(df), len(features), t)
    labels = df["label"].to_numpy()
    if (
        np.issubdtype(labels.dtype, np.floating)
        and np.all(np.isfinite(labels))
        and np.all(labels == np.round(labels))
    ):
        labels = labels.astype(np.int64)
    groups = df["group"].to_numpy() if "group" in df.columns else None
    xy = df[["x", "y"]].to_numpy(dtype=np.float64) if {"x", "y"} <= set(df.columns) else None
    return SampleTable(
        x=x, labels=labels, features=features, time_steps=t, groups=groups, xy=xy, source=source
    )


def check_classes(
    table: SampleTable,
    layer_id: str | None = None,
    min_classes: int = MIN_CLASSES,
    min_per_class: int = MIN_SAMPLES_PER_CLASS,
) -> list[int]:
    """Check the labels as class codes of catalogue layer `layer_id`; returns the codes present.

    Without `layer_id` the codes must all belong to the land-cover layer or all to the impervious
    classes layer. Raises LabelError naming the offending codes, classes or counts.
    """
    from landstack.models.classes import IMPERVIOUS_CLASSES_LAYER, LAND_COVER_LAYER, catalogue_classes

    name = table.source or "training table"
    labels = table.labels
    if not np.issubdtype(labels.dtype, np.integer):
        raise LabelError(f"{name}: labels must be whole-number class codes, got {labels.dtype} values")
    codes, counts = np.unique(labels, return_counts=True)
    candidates = [layer_id] if layer_id else [LAND_COVER_LAYER, IMPERVIOUS_CLASSES_LAYER]
    allowed: dict[str, set[int]] = {lid: {c["value"] for c in catalogue_classes(lid)} for lid in candidates}
    fits = [lid for lid, valid in allowed.items() if set(codes.tolist()) <= valid]
    if not fits:
        lid = candidates[0]
        unknown = sorted(set(codes.tolist()) - allowed[lid])
        known = ", ".join(f"{k} {sorted(v)}" for k, v in allowed.items())
        raise LabelError(
            f"{name}: label codes {unknown} are not classes of {lid}; use the catalogue's codes ({known})"
        )
    if codes.size < min_classes:
        raise LabelError(
            f"{name}: only {codes.size} class(es) {codes.tolist()} in the labels; a classifier needs at "
            f"least {min_classes}: add samples of other classes"
        )
    few = {int(c): int(n) for c, n in zip(codes, counts, strict=True) if n < min_per_class}
    if few:
        raise LabelError(
            f"{name}: classes {sorted(few)} have fewer than {min_per_class} samples ({few}); "
            "add samples or drop these classes"
        )
    return [int(c) for c in codes]


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
