"""The direct COG reader against odc-stac on synthetic archive windows, and the predictor on both."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.env import get_gdal_config

from landstack.catalog.grid import Aoi, TileGrid
from landstack.pipelines.features import FeatureConfig
from landstack.pipelines.inference.direct import DirectStack
from landstack.pipelines.inference.reading import StackReader, reference_stack
from landstack.pipelines.inference.windows import Span

YEAR = 2023
BANDS = list(dict.fromkeys([*FeatureConfig().needed_bands, *FeatureConfig().quantile_bands]))


@pytest.fixture(scope="module")
def items(s2_archive: Any) -> list[pystac.Item]:
    from landstack.pipelines.ingest import read_static_items

    store, result, _cfg = s2_archive
    return read_static_items(store.href(result.collection_key))


def _utm_grid(items: list[pystac.Item]) -> TileGrid:
    """A grid on the archive's own UTM 10 m grid, inside its footprint (the grid-aligned case)."""
    with rasterio.open(items[0].assets["red"].get_absolute_href()) as ds:
        t, crs = ds.transform, ds.crs.to_string()
    x0, y1 = t.c + 7 * t.a, t.f + 9 * t.e
    return TileGrid.from_bounds((x0, y1 - 70 * 10, x0 + 90 * 10, y1), 10.0, crs)


def _laea_grid() -> TileGrid:
    """A grid in EPSG:3035 (the roll-out grid): the assets are reprojected."""
    return TileGrid.from_bounds(Aoi.around(16.3, 48.2, 800).to_crs("EPSG:3035"), 10.0, "EPSG:3035")


def _odc_extent(items: list[pystac.Item], grid: TileGrid, rows: Span, cols: Span) -> Any:
    from landstack.pipelines.ingest import configure_gdal, load_stack

    configure_gdal()
    stack = load_stack(items, BANDS, aoi=Aoi(grid.bounds, grid.crs), crs=grid.crs, chunks=32)
    assert (stack.sizes["y"], stack.sizes["x"]) == grid.shape
    return stack, StackReader(stack, BANDS, 32).read(rows, cols)


def _compare(items: list[pystac.Item], grid: TileGrid, rows: Span, cols: Span) -> dict[str, float]:
    """Share of equal values per band between the direct reader and odc-stac over one read extent."""
    stack, (dn_odc, scl_odc) = _odc_extent(items, grid, rows, cols)
    cache_before = get_gdal_config("GDAL_CACHEMAX")
    with DirectStack(items, BANDS, grid, cache_mb=64) as direct, direct.reader(BANDS) as reader:
        assert direct.supports() is None
        assert get_gdal_config("GDAL_CACHEMAX") == 64 * 2**20  # GDAL's block cache capped while reading
        np.testing.assert_array_equal(direct.times, stack.time.values)
        np.testing.assert_array_equal(direct.offsets, stack.boa_offset.values)
        dn, scl = reader.read(rows, cols)
    assert get_gdal_config("GDAL_CACHEMAX") == cache_before
    shares = {}
    for b in BANDS:
        assert dn[b].shape == dn_odc[b].shape == (stack.sizes["time"], rows.size, cols.size)
        assert dn[b].dtype == dn_odc[b].dtype
        shares[b] = float((dn[b] == dn_odc[b]).mean())
    shares["SCL"] = float((scl == scl_odc).mean())
    assert scl.dtype == scl_odc.dtype
    assert (scl > 0).mean() > 0.5  # a real comparison: most pixels have data
    return shares


def test_grid_aligned_window_equals_odc_stac(items: list[pystac.Item]) -> None:
    """Same CRS: 10 m bands pasted, 20/60 m bands zoomed by nearest neighbour, exactly as odc-stac."""
    grid = _utm_grid(items)
    # a window at the grid's edge and one inside, neither on the asset's block grid
    for rows, cols in ((Span(0, 40), Span(0, 56)), (Span(23, 70), Span(31, 90))):
        shares = _compare(items, grid, rows, cols)
        assert all(v == 1.0 for v in shares.values()), shares


def test_reprojected_window_matches_odc_stac_within_tolerance(items: list[pystac.Item]) -> None:
    """UTM assets on the EPSG:3035 grid: GDAL's approximate transformer (odc-stac) picks the
    neighbouring source pixel for a few pixels near pixel edges; the direct reader maps exactly."""
    grid = _laea_grid()
    shares = _compare(items, grid, Span(5, 65), Span(10, 70))
    assert all(v >= 0.99 for v in shares.values()), shares


def test_same_solar_day_items_fuse_like_odc_stac(items: list[pystac.Item], tmp_path: Path) -> None:
    """Two items of one solar day give one time step: the earlier item wins where it has data, the
    later one fills its gaps (here the earlier item's left half is nodata)."""
    first, other = items[3], items[4]
    gappy = first.clone()
    gappy.id = f"{first.id}-gappy"
    for key, asset in gappy.assets.items():
        href = first.assets[key].get_absolute_href()
        if not (href and href.endswith(".tif")):
            continue
        with rasterio.open(href) as src:
            data, profile = src.read(), src.profile
        data[:, :, : data.shape[2] // 2] = 0
        path = tmp_path / f"{key}.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
        asset.href = str(path)
    later = other.clone()
    later.id = f"{other.id}-same-day"
    later.datetime = first.datetime + dt.timedelta(minutes=3)  # type: ignore[operator]
    for key, asset in later.assets.items():
        asset.href = other.assets[key].get_absolute_href() or asset.href
    mixed = [*items[:3], later, gappy]
    grid = _utm_grid(items)
    shares = _compare(mixed, grid, Span(0, 70), Span(0, 90))
    assert all(v == 1.0 for v in shares.values()), shares
    with DirectStack(mixed, BANDS, grid) as direct, direct.reader(["B04"]) as reader:
        assert len(direct.times) == 4 and direct.times[3] == np.datetime64(
            first.datetime.replace(tzinfo=None)
        )  # type: ignore[union-attr]
        dn, _ = reader.read(Span(0, 70), Span(0, 90))
    with (
        rasterio.open(other.assets["red"].get_absolute_href()) as o,
        rasterio.open(gappy.assets["red"].href) as g,
    ):
        assert (dn["B04"][3] == 0).mean() < 0.05  # the gap is filled
        assert (g.read(1) == 0).mean() > 0.4 and o.read(1).any()


def test_reference_stack_picks_the_direct_reader(s2_archive: Any) -> None:
    store, result, _cfg = s2_archive
    grid = _laea_grid()
    href = store.href(result.collection_key)
    stack = reference_stack(grid, YEAR, BANDS, catalog_href=href)
    assert isinstance(stack, DirectStack) and stack.sizes["y"] == grid.height
    stack.close()
    # a 60 m grid is coarser than the 10 m assets: odc-stac (which reads overviews) takes over
    coarse = TileGrid.from_bounds(grid.bounds, 60.0, grid.crs)
    lazy = reference_stack(coarse, YEAR, BANDS, catalog_href=href)
    assert not isinstance(lazy, DirectStack) and lazy.sizes["x"] == coarse.width


def test_predictor_direct_equals_odc_stac(
    items: list[pystac.Item], tiny_registry: str, tmp_path: Path
) -> None:
    """The whole predictor on a grid-aligned tile gives the same rasters from either reader."""
    from landstack.pipelines.inference.backends import LocalBackend
    from landstack.pipelines.inference.predict import Job, TilePredictor, UnitModel
    from landstack.pipelines.ingest import configure_gdal, load_stack

    grid = _utm_grid(items)
    backend = LocalBackend(tiny_registry, device="cpu")
    jobs = [
        Job("clcplus-backbone", [UnitModel("all", backend.model("tempcnn"))]),
        Job("hrl-imperviousness", [UnitModel("all", backend.model("unet-imd"))]),
    ]
    configure_gdal()
    lazy = load_stack(items, BANDS, aoi=Aoi(grid.bounds, grid.crs), crs=grid.crs, chunks=16)
    a = TilePredictor(lazy, grid, YEAR, backend, window=32, halo=16).run(jobs, tmp_path / "odc")
    with DirectStack(items, BANDS, grid, workers=2) as direct:
        b = TilePredictor(direct, grid, YEAR, backend, window=32, halo=16).run(jobs, tmp_path / "direct")
    assert b.blocks_read > 0 and a.valid_pixels == b.valid_pixels > 0.9 * grid.width * grid.height
    for key in a.files:
        with rasterio.open(a.files[key]) as x, rasterio.open(b.files[key]) as y:
            np.testing.assert_array_equal(x.read(), y.read(), err_msg=key)


def test_direct_reader_through_s3(tmp_path: Path) -> None:
    """Assets on s3:// (moto) are read through the storage layer's GDAL environment."""
    boto3 = pytest.importorskip("boto3")
    from landstack.pipelines.ingest import read_static_items
    from landstack.pipelines.settings import Settings
    from landstack.pipelines.synth import SynthConfig, write_archive

    endpoint = "http://127.0.0.1:55900"
    settings = Settings(
        store_url=f"s3://ls-direct-{uuid.uuid4().hex[:8]}/root",
        s3_endpoint_url=endpoint,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    try:
        client.create_bucket(Bucket=settings.store_url.split("/")[2])
    except Exception as e:  # the service is not running
        pytest.skip(f"moto S3 at {endpoint} is not reachable ({e}); start it with `landstack services up`")
    store = settings.store()
    cfg = SynthConfig(
        Aoi.around(16.3, 48.2, 700), dt.date(2023, 6, 1), dt.date(2023, 6, 20), seed=3, revisit_days=10
    )
    result = write_archive(cfg, store, "arch")
    s3_items = read_static_items(store.href(result.collection_key), settings)
    assert s3_items[0].assets["red"].href.startswith("s3://")
    grid = TileGrid.from_bounds(Aoi.around(16.3, 48.2, 300).to_crs("EPSG:3035"), 10.0, "EPSG:3035")
    with DirectStack(s3_items, ["B04"], grid, s3=settings.s3()) as direct, direct.reader(["B04"]) as reader:
        dn, scl = reader.read(Span(0, grid.height), Span(0, grid.width))
    assert dn["B04"].shape == (len(s3_items), *grid.shape)
    assert (dn["B04"] > 0).mean() > 0.9 and (scl > 0).mean() > 0.9
