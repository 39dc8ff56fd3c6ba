"""Known answers of the EMC-BUILT chain: ensemble, NDWI correction, m², aggregation, reprojection."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from landstack.pipelines.products import codes, emc_built


def test_ensemble_ndwi_and_m2() -> None:
    members = [np.array([[0.2, 0.5, np.nan]]), np.array([[0.4, 0.7, 0.3]])]
    mean = emc_built.ensemble_mean(members)
    np.testing.assert_allclose(mean, [[0.3, 0.6, 0.3]], atol=1e-6)
    corrected = emc_built.ndwi_correction(mean, np.array([[-0.3, 0.5, 0.0]]))
    np.testing.assert_allclose(emc_built.to_m2(corrected), [[30.0, 0.0, 30.0]], atol=1e-4)


def test_aggregation_preserves_totals_exactly() -> None:
    rng = np.random.default_rng(0)
    s10 = rng.integers(0, 101, (1000, 1000)).astype(np.uint8)
    s10[:37, :91] = 255  # no data
    s100 = emc_built.aggregate_sum(s10, 10, nodata=255)
    s1k = emc_built.aggregate_sum(np.where(s100 == 255, 0, s100), 10)
    total = int(s10[s10 != 255].astype(np.int64).sum())
    assert int(s100[s100 != 255].sum()) == total
    assert int(s1k.sum()) == total
    assert s100.max() <= 10_000 and s1k.max() <= 1_000_000
    assert s100[0, 0] == 255  # an all-nodata block stays nodata


def test_aggregation_rejects_ragged_grids() -> None:
    with pytest.raises(Exception, match="does not divide"):
        emc_built.aggregate_sum(np.zeros((15, 20)), 10)


def test_greenness_is_median_ndvi_near_built_up() -> None:
    ndvi = np.full((100, 100), 0.6, np.float32)
    ndvi[:, 50:] = 0.2
    built = np.zeros((100, 100), bool)
    built[45:55, 45:55] = True
    g = emc_built.greenness(ndvi, built)
    assert np.isnan(g[0, 0]) and np.isnan(g[99, 99])  # farther than 300 m from built-up
    inside = np.isfinite(g)
    assert inside[50, 50] and inside[50, 20] and not inside[50, 10]
    assert np.nanmin(g) >= 0 and np.nanmax(g) <= 100
    assert g[50, 50] == pytest.approx(40.0, abs=20.0)  # half 60, half 20 within the radius
    assert g[50, 16] == pytest.approx(60.0)  # only the greener side is within reach


def test_products_are_total_preserving_and_in_spec() -> None:
    rng = np.random.default_rng(4)
    h = w = 200
    s_members = [rng.uniform(0, 1, (h, w)) ** 3 for _ in range(3)]
    nres_members = [m * 0.3 for m in s_members]
    ndwi = np.full((h, w), -0.2)
    ndwi[:20] = 0.6  # a lake: no built-up there
    ndvi = rng.uniform(0.0, 0.9, (h, w))
    layers = emc_built.emc_layers_10m(s_members, nres_members, ndwi, ndvi)
    assert (layers["s"][:20] == 0).all()
    assert (layers["nres"] <= layers["s"]).all()
    transform = Affine(10, 0, 4_800_000, 0, -10, 2_850_000)
    out = emc_built.emc_products(layers, "EPSG:3035", transform)
    assert len(out) == 15
    total = float(layers["s"].sum())
    # before rounding: GDAL sum resampling within 0.01 %, then aggregation exactly
    for res in (10, 100, 1000):
        grid = emc_built.target_grid("EPSG:3035", transform, (h, w), "ESRI:54009", 10, snap=1000)
        fine = emc_built.reproject_sum(layers["s"], "EPSG:3035", transform, grid)
        agg = emc_built.aggregate_sum(fine, res // 10)
        assert np.nansum(agg) == pytest.approx(total, rel=1e-4)
    for deg in (3 / 3600, 30 / 3600):
        grid = emc_built.target_grid("EPSG:3035", transform, (h, w), "EPSG:4326", deg)
        assert np.nansum(emc_built.reproject_sum(layers["s"], "EPSG:3035", transform, grid)) == pytest.approx(
            total, rel=1e-4
        )
    for cid, (arr, grid) in out.items():
        spec = codes.layer(cid)
        assert arr.dtype == np.dtype(spec.dtype) and arr.shape == grid.shape
        codes.check_codes(spec, arr)
        if "-s-" in cid:
            valid = arr[arr != spec.nodata].astype(np.int64)
            # encoded (rounded) totals stay within half a m² per cell of the exact total
            assert abs(valid.sum() - total) <= 0.5 * valid.size + 1e-4 * total
    assert out["emc-built-s-1km"][1].transform.a == 1000
