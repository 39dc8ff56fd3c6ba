"""Masking, interpolation, data score, quantiles, harmonics and the blockwise dask path."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from landstack.pipelines import features as feat
from landstack.pipelines import ingest
from landstack.pipelines.errors import FeatureError

from .conftest import REFERENCE_YEAR, SMALL_AOI


def test_time_steps_cover_reference_year_plus_minus_three_months() -> None:
    steps = feat.time_steps(2023)
    assert steps.size == 54
    assert str(steps[0]) == "2022-10-01"
    assert np.all(np.diff(steps) == np.timedelta64(10, "D"))
    assert str(steps[-1]) == "2024-03-14"


def test_scl_mask_is_exactly_the_configured_classes() -> None:
    scl = np.arange(12, dtype=np.uint8)
    assert np.flatnonzero(~feat.valid_mask(scl, (2, 3, 8, 9), (0, 1))).tolist() == [0, 1, 2, 3, 8, 9]
    assert np.flatnonzero(~feat.valid_mask(scl, (3, 8, 9, 10), (0, 1))).tolist() == [0, 1, 3, 8, 9, 10]


def test_interpolation_reproduces_linear_signal_and_holds_edges() -> None:
    rng = np.random.default_rng(1)
    obs = np.sort(rng.choice(np.arange(0.0, 300.0), 40, replace=False))
    target = np.arange(-20.0, 330.0, 10.0)
    p = 500
    slope, icpt = rng.uniform(-1, 1, p), rng.uniform(0, 100, p)
    values = (icpt + slope * obs[:, None]).astype(np.float64)
    valid = rng.random((obs.size, p)) < 0.6
    values[~valid] = 1e6  # garbage at masked observations must never leak
    br = feat.bracket(valid, obs, target)
    out = feat.interpolate(values, br)
    first = np.array([obs[valid[:, j]].min() for j in range(p)])
    last = np.array([obs[valid[:, j]].max() for j in range(p)])
    clamped = np.clip(target[:, None], first, last)
    assert np.allclose(out, icpt + slope * clamped, atol=1e-3)


def test_all_cloud_pixel_is_nodata_with_zero_data_score() -> None:
    t, p = 8, 3
    cfg = feat.FeatureConfig()
    dn = {b: np.full((t, p), 2000, np.uint16) for b in {*cfg.needed_bands, "B02"}}
    scl = np.full((t, p), 4, np.uint8)
    scl[:, 0] = 9  # always cloudy
    scl[::2, 1] = 3  # shadows on half the dates
    obs = np.arange(t) * 60.0 + feat._days(feat.time_steps(2023))[0]
    feats, score = feat.series_features(dn, scl, np.zeros(t), obs, feat._days(feat.time_steps(2023)), cfg)
    assert score.tolist() == [0, 4, 8]
    assert np.isnan(feats[:, :, 0]).all()
    assert np.allclose(feats[cfg.names.index("B04"), :, 1:], 0.2)
    assert np.allclose(feats[cfg.names.index("NDVI"), :, 1:], 0.0)


def test_offset_and_index_values() -> None:
    t, p = 2, 1
    cfg = feat.FeatureConfig(bands=("B04", "B08"), indices=("NDVI",))
    dn = {"B04": np.full((t, p), 1500, np.uint16), "B08": np.full((t, p), 4000, np.uint16)}
    obs = feat._days(feat.time_steps(2023))[[0, -1]]
    feats, _ = feat.series_features(
        dn,
        np.full((t, p), 4, np.uint8),
        np.array([-1000, -1000]),
        obs,
        feat._days(feat.time_steps(2023)),
        cfg,
    )
    assert np.allclose(feats[0], 0.05) and np.allclose(feats[1], 0.3)
    assert np.allclose(feats[2], (0.3 - 0.05) / 0.35)


def test_quantiles_equal_numpy() -> None:
    rng = np.random.default_rng(3)
    v = rng.normal(size=(37, 400)).astype(np.float32)
    v[rng.random(v.shape) < 0.3] = np.nan
    v[:, 0] = np.nan
    qs = (0.1, 0.25, 0.5, 0.75, 0.9)
    ours = feat.nan_quantiles(v, qs)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        ref = np.nanquantile(v, qs, axis=0)
    assert np.allclose(ours, ref, atol=1e-6, equal_nan=True)
    assert np.isnan(ours[:, 0]).all()


def test_harmonic_fit_recovers_coefficients() -> None:
    days = np.sort(np.random.default_rng(4).uniform(0, 540, 60))
    design = feat.harmonic_design(days, harmonics=2, poly_degree=1, centre=270.0)
    coef = np.array([0.5, 0.05, -0.2, 0.1, 0.03, -0.02])
    y = design @ coef
    valid = np.ones((60, 2), bool)
    valid[::3, 1] = False
    got = feat.harmonic_fit(np.stack([y, y], axis=1), valid, design)
    assert np.allclose(got[:, 0], coef, atol=1e-4) and np.allclose(got[:, 1], coef, atol=1e-4)
    valid[:, 1] = False
    assert np.isnan(feat.harmonic_fit(np.stack([y, y], axis=1), valid, design)[:, 1]).all()


def _random_stack(h: int, w: int, t: int, chunk: int) -> xr.Dataset:
    rng = np.random.default_rng(5)
    cfg = feat.FeatureConfig()
    times = np.datetime64("2022-10-03") + np.sort(rng.choice(540, t, replace=False)).astype("timedelta64[D]")
    data = {
        b: (
            ("time", "y", "x"),
            da.from_array(rng.integers(1, 6000, (t, h, w), dtype=np.uint16), chunks=(1, chunk, chunk)),
        )
        for b in {*cfg.needed_bands, "B02"}
    }
    scl = rng.choice(np.array([4, 5, 6, 8, 9, 3], np.uint8), (t, h, w))
    data["SCL"] = (("time", "y", "x"), da.from_array(scl, chunks=(1, chunk, chunk)))
    return xr.Dataset(
        data,
        coords={
            "time": times,
            "y": np.arange(h) * -10.0,
            "x": np.arange(w) * 10.0,
            "boa_offset": ("time", np.full(t, -1000)),
        },
    )


def test_blockwise_result_does_not_depend_on_chunking() -> None:
    a = feat.timeseries_features(_random_stack(40, 30, 25, 16), REFERENCE_YEAR).compute()
    b = feat.timeseries_features(_random_stack(40, 30, 25, 40), REFERENCE_YEAR).compute()
    assert a.features.shape == (12, 54, 40, 30)
    assert np.array_equal(a.features.values, b.features.values, equal_nan=True)
    assert np.array_equal(a.data_score.values, b.data_score.values)
    u = feat.unet_inputs(_random_stack(40, 30, 25, 16)).compute()
    assert u.sizes["feature"] == 6 * 5 + 6 + 1 and u.feature.values[-1] == "NDVI_median"


def test_unknown_feature_and_empty_time_range_are_errors() -> None:
    with pytest.raises(FeatureError, match="B13"):
        feat.FeatureConfig(bands=("B13",))
    with pytest.raises(FeatureError, match="reference year 2030"):
        feat.timeseries_features(_random_stack(8, 8, 5, 8), 2030)


def test_features_on_synthetic_archive(s2_archive) -> None:
    store, result, cfg = s2_archive
    items = ingest.search_items(SMALL_AOI, cfg.start, cfg.end, catalog_href=store.href(result.collection_key))
    fcfg = feat.FeatureConfig()
    stack = ingest.load_stack(items, fcfg.needed_bands, crs="native", aoi=SMALL_AOI)
    out = feat.timeseries_features(stack, REFERENCE_YEAR, fcfg).compute()
    scl = stack.SCL.sel(time=slice("2022-10-01", "2024-03-24")).values
    expected_score = (~np.isin(scl, [0, 1, 2, 3, 8, 9])).sum(axis=0)
    assert np.array_equal(out.data_score.values, expected_score)
    # Deciduous forest is green in July and bare in January; water has negative NDVI all year.
    t = result.scene.transform
    c0, r0 = int((float(out.x[0]) - t.c) // 10), int((t.f - float(out.y[0])) // 10)
    lc = result.scene.landcover[r0 : r0 + out.sizes["y"], c0 : c0 + out.sizes["x"]]
    ndvi = out.features.sel(feature="NDVI")
    july, january = (
        ndvi.sel(step="2023-07-10", method="nearest").values,
        ndvi.sel(step="2023-01-20", method="nearest").values,
    )
    for cls, low, high in ((3, 0.45, None), (10, None, 0.0)):
        m = lc == cls
        if m.any():
            if low is not None:
                assert np.nanmean(july[m]) > low > np.nanmean(january[m])
            if high is not None:
                assert np.nanmean(july[m]) < high


def test_features_command_writes_one_cog_per_feature_computing_each_block_once(
    s2_archive, tmp_path, monkeypatch
) -> None:
    import rasterio
    from rio_cogeo.cogeo import cog_validate
    from typer.testing import CliRunner

    from landstack.pipelines.cli import app
    from landstack.pipelines.settings import get_settings

    store, result, _ = s2_archive
    calls: list[tuple[int, ...]] = []
    blocks: list[int] = []
    series_block, timeseries_features = feat._series_block, feat.timeseries_features

    def counted_block(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args[-1].shape)
        return series_block(*args, **kwargs)

    def recorded(*args, **kwargs):  # type: ignore[no-untyped-def]
        ds = timeseries_features(*args, **kwargs)
        blocks.append(int(np.prod(ds["data_score"].data.numblocks)))
        return ds

    monkeypatch.setattr(feat, "_series_block", counted_block)
    monkeypatch.setattr(feat, "timeseries_features", recorded)
    monkeypatch.setenv("LANDSTACK_STORE_URL", (tmp_path / "out").as_uri())
    get_settings.cache_clear()
    try:
        bbox = ",".join(str(v) for v in SMALL_AOI.bbox)
        args = [
            "--bbox",
            bbox,
            "--crs",
            SMALL_AOI.crs,
            "--year",
            "2023",
            "--target-crs",
            "native",
            "--catalog",
            store.href(result.collection_key),
            "--max-cloud",
            "30",
        ]
        res = CliRunner().invoke(app, ["features", "timeseries", *args, "--prefix", "f"])
        assert res.exit_code == 0, res.output
        # 13 rasters (12 features + data score) from one computation of each block, not 13
        assert blocks and len(calls) == blocks[0], (len(calls), blocks)
        written = sorted(p.name for p in (tmp_path / "out/f").iterdir())
        assert written == sorted([f"{n}.tif" for n in feat.FeatureConfig().names] + ["data_score.tif"])
        for name in written:
            valid, errors, _ = cog_validate(str(tmp_path / "out/f" / name))
            assert valid, (name, errors)
        with rasterio.open(tmp_path / "out/f/NDVI.tif") as ds:
            assert ds.count == 54 and ds.crs.to_epsg() == 32633 and ds.res == (10.0, 10.0)
            assert ds.descriptions[0] == "2022-10-01"
            ndvi = ds.read()
        assert np.nanmin(ndvi) >= -1 and np.nanmax(ndvi) <= 1
        with rasterio.open(tmp_path / "out/f/data_score.tif") as ds:
            assert ds.read(1).max() > 0
        res = CliRunner().invoke(app, ["features", "unet", *args, "--key", "f/unet.tif"])
        assert res.exit_code == 0, res.output
        assert cog_validate(str(tmp_path / "out/f/unet.tif"))[0]
        with rasterio.open(tmp_path / "out/f/unet.tif") as ds:
            assert ds.count == 37 and ds.descriptions[-1] == "NDVI_median"
    finally:
        get_settings.cache_clear()
