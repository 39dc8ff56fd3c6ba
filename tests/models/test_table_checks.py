"""Training tables are checked before any fitting: types, label codes against the catalogue, counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from landstack.models.errors import LabelError, SamplesError
from landstack.models.tables import check_classes, read_table, table_from_frame


def _frame(labels: list[int]) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame({"label": labels, "B04_0": np.ones(n), "B04_1": np.zeros(n)})


def test_codes_are_checked_against_the_catalogue() -> None:
    assert check_classes(table_from_frame(_frame([1, 1, 11, 11]))) == [1, 11]
    assert check_classes(table_from_frame(_frame([0, 0, 3, 3])), "cisc-classes") == [0, 3]
    with pytest.raises(LabelError, match=r"\[12\] are not classes of clcplus-backbone-ras"):
        check_classes(table_from_frame(_frame([1, 1, 12, 12])))
    with pytest.raises(LabelError, match=r"\[5\] are not classes of cisc-classes"):
        check_classes(table_from_frame(_frame([0, 0, 5, 5])), "cisc-classes")
    with pytest.raises(LabelError, match="only 1 class"):
        check_classes(table_from_frame(_frame([2, 2, 2])))
    with pytest.raises(LabelError, match=r"classes \[3\] have fewer than 2 samples"):
        check_classes(table_from_frame(_frame([2, 2, 3])))
    with pytest.raises(LabelError, match="whole-number class codes"):
        check_classes(table_from_frame(_frame([1, 2]).assign(label=[0.5, 1.5])))


def test_column_types_and_formats(tmp_path: Path) -> None:
    with pytest.raises(SamplesError, match=r"B04_1 \(object\)"):
        table_from_frame(_frame([1, 2]).assign(B04_1=["a", "b"]))
    with pytest.raises(SamplesError, match="1 rows have no group"):
        table_from_frame(_frame([1, 2]).assign(group=[1, None]))
    _frame([1, 1, 2, 2]).to_csv(tmp_path / "t.parquet", index=False)
    with pytest.raises(SamplesError, match=r"not a Parquet file \(it looks like CSV text\)"):
        read_table(tmp_path / "t.parquet")
    _frame([1, 1, 2, 2]).to_parquet(tmp_path / "t.csv")
    with pytest.raises(SamplesError, match="binary, not CSV"):
        read_table(tmp_path / "t.csv")
    _frame([1, 1, 5, 5]).to_parquet(tmp_path / "ok.parquet")
    assert len(read_table(tmp_path / "ok.parquet", classes="auto")) == 4
    with pytest.raises(LabelError):
        read_table(tmp_path / "ok.parquet", classes="cisc-classes")
