"""The wide training table at labelled points, and the synth / samples command lines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from landstack.pipelines import features as feat
from landstack.pipelines import ingest, samples
from landstack.pipelines.cli import app
from landstack.pipelines.errors import SampleError
from landstack.pipelines.settings import get_settings

from .conftest import REFERENCE_YEAR, SMALL_AOI


@pytest.fixture(scope="module")
def table_and_stack(s2_archive):
    store, result, cfg = s2_archive
    items = ingest.search_items(SMALL_AOI, cfg.start, cfg.end, catalog_href=store.href(result.collection_key))
    stack = ingest.load_stack(
        items, feat.FeatureConfig().needed_bands, aoi=SMALL_AOI, crs="native", chunks=128
    )
    points = pd.read_parquet(store.path(result.samples_key))
    table = samples.extract_samples(stack, points, REFERENCE_YEAR, points_crs=result.scene.crs)
    return table, stack, points


def test_table_format(table_and_stack) -> None:
    table, _, points = table_and_stack
    names = feat.FeatureConfig().names
    assert names == ["B01", "B03", "B04", "B05", "B08", "B09", "B11", "B12", "NDVI", "NDWI", "NDMI", "NBR"]
    assert list(table.columns[:5]) == ["label", "group", "x", "y", "data_score"]
    fcols = samples.feature_columns(names, 54)
    assert list(table.columns[-len(fcols) :]) == fcols
    assert fcols[0] == "B01_0" and fcols[53] == "B01_53" and "NDVI_0" in fcols
    assert table["label"].dtype == np.int16 and table["group"].dtype == np.int64
    assert table[fcols].dtypes.unique().tolist() == [np.dtype("float32")]
    inside = table.merge(points, on=["x", "y"], suffixes=("", "_p"))
    assert len(inside) == len(table)
    assert (inside["label"] == inside["label_p"]).all() and (inside["group"] == inside["group_p"]).all()
    assert set(table["label"]) <= set(range(1, 12))


def test_table_equals_raster_features_at_the_points(table_and_stack) -> None:
    table, stack, _ = table_and_stack
    raster = feat.timeseries_features(stack, REFERENCE_YEAR).compute()
    row, col, inside = samples.point_pixels(stack, table["x"].to_numpy(), table["y"].to_numpy(), "EPSG:32633")
    assert inside.all()
    at = raster.features.values[:, :, row, col]  # (F, S, P)
    fcols = samples.feature_columns(raster.feature.values.tolist(), 54)
    got = table[fcols].to_numpy().reshape(len(table), 12, 54).transpose(1, 2, 0)
    assert np.allclose(got, at, equal_nan=True)
    assert np.array_equal(table["data_score"].to_numpy(), raster.data_score.values[row, col])


def test_parquet_round_trip(table_and_stack, tmp_path) -> None:
    from landstack.storage import ObjectStore

    table, _, _ = table_and_stack
    store = ObjectStore(tmp_path.as_uri())
    href = samples.write_table(table, store, "t/training.parquet")
    back = pd.read_parquet(href.removeprefix("file://"))
    pd.testing.assert_frame_equal(back, table, check_like=False)


def test_points_outside_or_without_columns_are_errors(table_and_stack) -> None:
    _, stack, points = table_and_stack
    far = points.assign(x=points["x"] + 1e6)
    with pytest.raises(SampleError, match=r"none of the .* points lies in the stack"):
        samples.extract_samples(stack, far, REFERENCE_YEAR, points_crs="EPSG:32633")
    with pytest.raises(SampleError, match=r"lack columns \['label'\]"):
        samples.extract_samples(stack, points.drop(columns="label"), REFERENCE_YEAR, points_crs="EPSG:32633")


def test_synth_and_samples_commands(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LANDSTACK_STORE_URL", (tmp_path / "store").as_uri())
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        bbox = "16.295,48.196,16.305,48.203"
        res = runner.invoke(
            app,
            [
                "synth",
                "--bbox",
                bbox,
                "--start",
                "2023-05-01",
                "--end",
                "2023-07-31",
                "--seed",
                "2",
                "--prefix",
                "demo",
                "--points-per-class",
                "3",
            ],
        )
        assert res.exit_code == 0, res.output
        assert (tmp_path / "store/demo/collection.json").exists()
        catalog = (tmp_path / "store/demo/collection.json").as_uri()
        res = runner.invoke(
            app,
            [
                "samples",
                "--points",
                str(tmp_path / "store/demo/truth/samples.parquet"),
                "--points-crs",
                "EPSG:32633",
                "--year",
                "2023",
                "--bbox",
                bbox,
                "--catalog",
                catalog,
                "--target-crs",
                "native",
                "--out",
                "s/train.parquet",
            ],
        )
        assert res.exit_code == 0, res.output
        table = pd.read_parquet(tmp_path / "store/s/train.parquet")
        assert "NBR_53" in table.columns and len(table) > 0
        res = runner.invoke(
            app,
            [
                "samples",
                "--points",
                str(tmp_path / "store/demo/truth/samples.parquet"),
                "--points-crs",
                "EPSG:32633",
                "--year",
                "2019",
                "--bbox",
                bbox,
                "--catalog",
                catalog,
            ],
        )
        assert res.exit_code == 2
        assert "no Sentinel-2 L2A item" in res.output and "2018-10-01 and 2020-03-31" in res.output
    finally:
        get_settings.cache_clear()


def _square(x: float, y: float, half: float) -> list[list[list[float]]]:
    return [
        [
            [x - half, y - half],
            [x + half, y - half],
            [x + half, y + half],
            [x - half, y + half],
            [x - half, y - half],
        ]
    ]


def test_polygons_become_pixel_samples(table_and_stack) -> None:
    _, stack, _ = table_and_stack
    crs = samples.stack_crs(stack).to_string()
    xs, ys = stack.x.to_numpy(), stack.y.to_numpy()
    # a 3 x 3 pixel square centred on a pixel centre, and a 1-pixel one (pixel size 10 m)
    polygons = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": 7,
                "properties": {"label": 6},
                "geometry": {"type": "Polygon", "coordinates": _square(float(xs[20]), float(ys[20]), 15.0)},
            },
            {
                "type": "Feature",
                "id": 9,
                "properties": {"label": 10},
                "geometry": {"type": "Polygon", "coordinates": _square(float(xs[40]), float(ys[30]), 4.0)},
            },
        ],
    }
    pts = samples.polygon_points(stack, polygons, crs)
    assert (pts["group"] == 7).sum() == 9 and (pts["group"] == 9).sum() == 1
    assert (
        set(pts.loc[pts["group"] == 7, "label"]) == {6} and pts.loc[pts["group"] == 9, "x"].item() == xs[40]
    )
    poly_table = samples.extract_samples(stack, pts, REFERENCE_YEAR, points_crs=crs)
    point_table = samples.extract_samples(stack, pts.assign(group=0), REFERENCE_YEAR, points_crs=crs)
    fcols = [c for c in poly_table.columns if c.startswith("NDVI_")]
    np.testing.assert_array_equal(poly_table[fcols].to_numpy(), point_table[fcols].to_numpy())
    assert poly_table["group"].tolist() == pts["group"].tolist()


def test_polygon_without_label_is_an_error(table_and_stack) -> None:
    _, stack, _ = table_and_stack
    crs = samples.stack_crs(stack).to_string()
    x, y = float(stack.x[5]), float(stack.y[5])
    bad = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "field-1",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": _square(x, y, 20.0)},
            }
        ],
    }
    with pytest.raises(SampleError, match="polygon 'field-1' has no 'label' property"):
        samples.polygon_points(stack, bad, crs)
