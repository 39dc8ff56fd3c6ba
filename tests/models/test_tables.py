"""Reading the sampling step's wide training tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from landstack.models.errors import SamplesError
from landstack.models.tables import read_table, table_from_frame, table_to_frame

from .conftest import synthetic_table


def test_csv_and_parquet_give_the_same_arrays(tmp_path: Path) -> None:
    df = synthetic_table(n_per_class=5, time_steps=7)
    df.to_csv(tmp_path / "s.csv", index=False)
    df.to_parquet(tmp_path / "s.parquet")
    a, b = read_table(tmp_path / "s.csv"), read_table(tmp_path / "s.parquet")
    assert a.x.shape == (55, 4, 7)
    assert a.features == ["B04", "B08", "B11", "NDVI"]
    assert a.time_steps == 7
    assert a.labels.dtype.kind == "i" and set(a.labels) == set(range(1, 12))
    np.testing.assert_allclose(a.x, b.x, rtol=1e-6)
    assert a.groups is not None and a.xy is not None and a.xy.shape == (55, 2)
    # feature-major layout: x[:, f, t] is column <feature>_<t>
    assert a.x[3, 2, 5] == pytest.approx(df.loc[3, "B11_5"])


def test_round_trip_through_frame() -> None:
    t = table_from_frame(synthetic_table(n_per_class=3, time_steps=4))
    back = table_from_frame(table_to_frame(t))
    np.testing.assert_array_equal(back.x, t.x)
    np.testing.assert_array_equal(back.labels, t.labels)


def test_bad_tables_are_named(tmp_path: Path) -> None:
    with pytest.raises(SamplesError, match="does not exist"):
        read_table(tmp_path / "missing.parquet")
    df = pd.DataFrame({"label": [1, 2], "B01_0": [0.1, 0.2], "B01_1": [0.1, 0.2], "B02_0": [0.3, 0.4]})
    with pytest.raises(SamplesError, match=r"B02.*time steps 0\.\.1"):
        table_from_frame(df)
    with pytest.raises(SamplesError, match="no 'label' column"):
        table_from_frame(df.drop(columns="label"))
    with pytest.raises(SamplesError, match="no feature columns"):
        table_from_frame(pd.DataFrame({"label": [1], "group": ["a"]}))
    (tmp_path / "s.xlsx").write_text("x")
    with pytest.raises(SamplesError, match="unknown format"):
        read_table(tmp_path / "s.xlsx")


def test_grouped_holdout_keeps_every_class_in_training() -> None:
    import numpy as np

    from landstack.models.splits import holdout_split

    # class 4 lives in one parcel, class 3 in two; the others in many
    labels = np.array([1] * 40 + [2] * 40 + [3] * 20 + [4] * 30)
    groups = np.concatenate(
        [np.repeat(np.arange(8), 5), np.repeat(np.arange(8, 16), 5), [20] * 10 + [21] * 10, [30] * 30]
    )
    for seed in range(10):
        tr, te = holdout_split(labels, groups, 0.2, seed)
        assert set(labels[tr]) == {1, 2, 3, 4}, seed
        assert 4 not in set(labels[te])
        assert not set(groups[tr]) & set(groups[te])
        assert len(tr) + len(te) == len(labels)
