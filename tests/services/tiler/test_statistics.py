"""AOI statistics of the tiler against a direct rasterio computation on the same COGs."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_geom

pytestmark = pytest.mark.integration

LC, IMD = "clcplus-backbone-ras", "hrl-imperviousness-imd"
X0, Y0 = 4_321_000.0, 3_210_000.0  # origin of the test tiles (product_cogs.write_products)
# An AOI across both tiles (the boundary is at X0 + 2560), edges on pixel edges, so every
# pixel centre is at least 5 m away from it whatever the WGS84 round trip does.
AOI_3035 = (X0 + 1200.0, Y0 - 2540.0, X0 + 3800.0, Y0 - 300.0)  # xmin, ymin, xmax, ymax


def _aoi_wgs84() -> dict[str, Any]:
    x0, y0, x1, y1 = AOI_3035
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    # densified edges: a straight LAEA edge stays within millimetres of the WGS84 polygon's edge
    dense = []
    for (ax, ay), (bx, by) in itertools.pairwise(ring):
        dense += [[ax + (bx - ax) * k / 20, ay + (by - ay) * k / 20] for k in range(20)]
    dense.append(dense[0])
    return dict(transform_geom("EPSG:3035", "EPSG:4326", {"type": "Polygon", "coordinates": [dense]}))


def _direct(store: Path, cid: str, year: int) -> np.ndarray:
    """Pixels of the AOI read straight from the COGs by row/column arithmetic."""
    x0, y0, x1, y1 = AOI_3035
    values = []
    for tile in (0, 1):
        path = store / "products" / cid / f"{cid}-{year}-t{tile}" / "data.tif"
        with rasterio.open(path) as ds:
            data = ds.read(1)
            cols = ds.transform.c + (np.arange(ds.width) + 0.5) * ds.transform.a
            rows = ds.transform.f + (np.arange(ds.height) + 0.5) * ds.transform.e
            inside = np.outer((rows > y0) & (rows < y1), (cols > x0) & (cols < x1))
            values.append(data[inside])
    all_values = np.concatenate(values)
    return all_values[all_values != 255]


def _stats(stack: Any, cid: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{stack.tiler}/collections/{cid}/aoi-statistics", json=body, timeout=120)


def test_area_per_class_equals_a_direct_computation(stack: Any) -> None:
    r = _stats(
        stack,
        LC,
        {"aoi": {"type": "Feature", "geometry": _aoi_wgs84(), "properties": {}}, "years": [2018, 2021]},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["classified"] is True and [y["year"] for y in body["years"]] == [2018, 2021]
    for year_result in body["years"]:
        assert len(year_result["items"]) == 2  # the AOI spans both tiles
        expected = _direct(stack.store, LC, year_result["year"])
        codes, counts = np.unique(expected, return_counts=True)
        got = {c["value"]: c for c in year_result["classes"]}
        assert sorted(got) == codes.tolist()
        for code, n in zip(codes.tolist(), counts.tolist(), strict=True):
            assert got[code]["pixels"] == n
            assert got[code]["area_km2"] == pytest.approx(n * 100 / 1e6)
            assert got[code]["percent"] == pytest.approx(100 * n / expected.size)
        assert year_result["valid_area_km2"] == pytest.approx(expected.size * 100 / 1e6)
    sealed = {y["year"]: next(c["area_km2"] for c in y["classes"] if c["value"] == 1) for y in body["years"]}
    assert sealed[2021] > sealed[2018]
    # the AOI is 2.6 km x 2.24 km
    assert body["aoi_area_km2"] == pytest.approx(2.6 * 2.24, rel=0.02)


def test_mean_and_sum_of_a_continuous_layer_equal_a_direct_computation(stack: Any) -> None:
    r = _stats(stack, IMD, {"aoi": _aoi_wgs84()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["classified"] is False and body["unit"] == "percent"
    assert [y["year"] for y in body["years"]] == [2018, 2021]  # every year when none is asked for
    for year_result in body["years"]:
        expected = _direct(stack.store, IMD, year_result["year"]).astype("float64")
        assert year_result["valid_pixels"] == expected.size
        assert year_result["sum"] == pytest.approx(expected.sum())
        assert year_result["mean"] == pytest.approx(expected.mean())
        assert year_result["min"] == expected.min() and year_result["max"] == expected.max()


def test_bad_statistics_requests_are_clear_errors(stack: Any) -> None:
    r = _stats(stack, LC, {"aoi": {"type": "Point", "coordinates": [10, 50]}})
    assert r.status_code == 400 and "Polygon" in r.json()["detail"]
    r = _stats(stack, LC, {"aoi": _aoi_wgs84(), "years": "2018"})
    assert r.status_code == 400 and "years" in r.json()["detail"]
    r = _stats(stack, "no-such-layer", {"aoi": _aoi_wgs84()})
    assert r.status_code == 404 and "catalog list" in r.json()["detail"]
    huge = {"type": "Polygon", "coordinates": [[[-10, 35], [30, 35], [30, 70], [-10, 70], [-10, 35]]]}
    r = _stats(stack, LC, {"aoi": huge})
    assert r.status_code == 400 and "LANDSTACK_TILER_MAX_AOI_KM2" in r.json()["detail"]


def test_an_aoi_outside_every_item_has_no_items(stack: Any) -> None:
    far = {"type": "Polygon", "coordinates": [[[0, 40], [0.1, 40], [0.1, 40.1], [0, 40.1], [0, 40]]]}
    r = _stats(stack, LC, {"aoi": far, "years": [2018]})
    assert r.status_code == 200, r.text
    assert r.json()["years"] == [
        {"year": 2018, "items": [], "valid_area_km2": 0.0, "valid_pixels": 0, "classes": []}
    ]


def test_statistics_read_product_cogs_from_s3(stack: Any) -> None:
    """The same numbers when the COGs live on S3 (the local moto endpoint), read through GDAL."""
    import socket
    import uuid

    from landstack.storage import ObjectStore, S3Options, gdal_env
    from landstack.tiler.statistics import aoi_statistics

    try:
        socket.create_connection(("127.0.0.1", 55900), timeout=0.5).close()
    except OSError:
        pytest.skip("moto S3 is not running on 127.0.0.1:55900: run 'landstack services up'")
    s3 = S3Options(
        endpoint_url="http://127.0.0.1:55900", access_key_id="testing", secret_access_key="testing"
    )
    bucket = f"tiler-{uuid.uuid4().hex[:12]}"
    store = ObjectStore(f"s3://{bucket}", s3)
    store.fs.call_s3("create_bucket", Bucket=bucket)
    items = []
    for tile in (0, 1):
        key = f"products/{LC}/{LC}-2021-t{tile}/data.tif"
        store.put_file(stack.store / key, key)
        items.append({"id": f"t{tile}", "assets": {"data": {"href": store.href(key), "roles": ["data"]}}})
    with gdal_env(s3, GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        result = aoi_statistics(LC, _aoi_wgs84(), {2021: items})
    expected = _direct(stack.store, LC, 2021)
    codes, counts = np.unique(expected, return_counts=True)
    got = {c["value"]: c["pixels"] for c in result["years"][0]["classes"]}
    assert got == dict(zip(codes.tolist(), counts.tolist(), strict=True))
