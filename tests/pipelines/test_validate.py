"""The shared validators: parsed values back, or BadInputError naming the value and the fix."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from landstack.pipelines import validate
from landstack.pipelines.errors import BadInputError


def test_bbox() -> None:
    assert validate.parse_bbox("16.2, 48.1,16.3,48.2") == (16.2, 48.1, 16.3, 48.2)
    assert validate.parse_bbox([500000, 5300000, 510000, 5310000], "EPSG:32633") == (
        500000.0,
        5300000.0,
        510000.0,
        5310000.0,
    )
    for bad, words in [
        ("1,2,3", "4 numbers"),
        ("1,2,x,4", "4 numbers"),
        ("1,2,1,4", "minx must be below maxx"),
        ("1,nan,2,3", "finite"),
        ("-181,0,1,1", "-180..180"),
        ("0,-91,1,1", "-90..90"),
    ]:
        with pytest.raises(BadInputError, match=words) as info:
            validate.parse_bbox(bad)
        assert repr(bad) in str(info.value)


def test_crs_dates_numbers_choices() -> None:
    assert validate.check_crs("EPSG:3035") == "EPSG:3035"
    assert validate.check_crs("native", allow_native=True) == "native"
    with pytest.raises(BadInputError, match=r"'EPSG:99999'.*not a known CRS"):
        validate.check_crs("EPSG:99999")
    with pytest.raises(BadInputError, match="'native'"):
        validate.check_crs("native")
    assert validate.parse_date("2023-02-28", "--start") == dt.date(2023, 2, 28)
    with pytest.raises(BadInputError, match=r"--start '2023-02-30'.*YYYY-MM-DD"):
        validate.parse_date("2023-02-30", "--start")
    with pytest.raises(BadInputError, match="2024-01-01 is after --end 2023-01-01"):
        validate.check_date_range("2024-01-01", "2023-01-01")
    assert validate.check_range(80, "--max-cloud", 0, 100) == 80.0
    with pytest.raises(BadInputError, match=r"0\.\.100"):
        validate.check_range(101, "--max-cloud", 0, 100)
    with pytest.raises(BadInputError, match="--workers 0"):
        validate.check_positive(0, "--workers")
    with pytest.raises(BadInputError, match=r"\['a', 'b'\]"):
        validate.check_choice("c", ["b", "a"], "--kind")


def test_urls_and_keys() -> None:
    assert validate.check_url("s3://bucket/x", "--in") == "s3://bucket/x"
    assert validate.check_url("rel/path.json", "--in").startswith("file:///")
    for bad, words in [
        ("ftp://host/x", "scheme 'ftp' is not supported"),
        ("http://", "no host"),
        ("s3://ab/x", "at least 3 characters"),
        ("http://h:port/", "malformed"),
        ("", "is empty"),
    ]:
        with pytest.raises(BadInputError, match=words):
            validate.check_url(bad, "--in")
    with pytest.raises(BadInputError, match="not a URL"):
        validate.check_url("host/stac", "--api-url", schemes=validate.HTTP_SCHEMES, allow_path=False)
    assert validate.check_key("a/./b/c.tif") == "a/b/c.tif"
    for bad in ("/abs", "../up", "a/../../up", "", ".", "s3://b/k", "a\\b"):
        with pytest.raises(BadInputError):
            validate.check_key(bad)


def test_files(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0], "label": [1, 2]})
    df.to_parquet(tmp_path / "p.parquet")
    df.to_csv(tmp_path / "c.parquet", index=False)
    assert validate.read_parquet(str(tmp_path / "p.parquet"), "--points", columns=["x"]).shape == (2, 3)
    with pytest.raises(BadInputError, match="does not exist"):
        validate.read_parquet(str(tmp_path / "none.parquet"), "--points")
    with pytest.raises(BadInputError, match="is a folder"):
        validate.read_parquet(str(tmp_path), "--points")
    with pytest.raises(BadInputError, match="not a Parquet file"):
        validate.read_parquet(str(tmp_path / "c.parquet"), "--points")
    with pytest.raises(BadInputError, match=r"lacks the columns \['group'\]"):
        validate.read_parquet(str(tmp_path / "p.parquet"), "--points", columns=["group"])
    with pytest.raises(BadInputError, match="'label' must hold whole numbers"):
        validate.check_columns(df.assign(label=[1.5, 2]), "--points", integer=["label"])
    with pytest.raises(BadInputError, match="'x' has 1 empty"):
        validate.check_columns(df.assign(x=[None, 1.0]), "--points", numeric=["x"])
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(BadInputError, match="not valid JSON"):
        validate.read_json(str(tmp_path / "bad.json"), "--input")
    poly = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    (tmp_path / "g.geojson").write_text(json.dumps(poly))
    doc = validate.read_geojson(str(tmp_path / "g.geojson"), "--polygons", geometry_types=["Polygon"])
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 1
    with pytest.raises(BadInputError, match="label=None"):
        validate.check_feature_labels(doc, "--polygons")
    (tmp_path / "e.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(BadInputError, match="has no features"):
        validate.read_geojson(str(tmp_path / "e.geojson"), "--polygons")
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInputError, match="is a file"):
        validate.output_folder(tmp_path / "file", "--out")
    assert validate.output_folder(tmp_path / "new" / "dir", "--out") == tmp_path / "new" / "dir"
    assert not (tmp_path / "new").exists()
