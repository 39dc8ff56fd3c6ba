"""Search and load: static catalogues, item lists, target grids, the real 29RKH tile, and bad input."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio

from landstack.pipelines import features as feat
from landstack.pipelines import ingest, s2
from landstack.pipelines.errors import AssetReadError, EmptySearchError, MissingAssetError
from landstack.pipelines.synth import Aoi

from .conftest import SMALL_AOI

REAL_TILE = (
    Path(__file__).resolve().parents[3]
    / "shared/data/s2/rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2"
    / "S2A_29RKH_20200219_0_L2A"
)


def _items(s2_archive) -> list[pystac.Item]:
    store, result, cfg = s2_archive
    return ingest.search_items(SMALL_AOI, cfg.start, cfg.end, catalog_href=store.href(result.collection_key))


def test_static_catalogue_search_filters_time_and_cloud(s2_archive) -> None:
    store, result, _cfg = s2_archive
    every = [pystac.Item.from_dict(store.read_json(k)) for k in result.item_keys]
    items = _items(s2_archive)
    assert [i.id for i in items] == sorted(
        (i.id for i in every if i.properties["eo:cloud_cover"] < 80), key=lambda x: x.split("_")[2]
    )
    few = ingest.search_items(SMALL_AOI, "2023-01-01", "2023-12-31", items=every, max_cloud=30)
    assert few and all(i.properties["eo:cloud_cover"] < 30 for i in few)
    assert all("2023-01-01" <= i.datetime.date().isoformat() <= "2023-12-31" for i in few)


def test_empty_search_names_aoi_and_time_range(s2_archive) -> None:
    store, result, _ = s2_archive
    far = Aoi((5.0, 40.0, 5.1, 40.1), "EPSG:4326")
    with pytest.raises(
        EmptySearchError, match=r"bbox \(5\.0, 40\.0, 5\.1, 40\.1\).*2019-01-01 and 2019-02-01"
    ):
        ingest.search_items(far, "2019-01-01", "2019-02-01", catalog_href=store.href(result.collection_key))


def test_native_grid_keeps_values_and_resamples_20m_nearest(s2_archive) -> None:
    items = _items(s2_archive)[:3]
    stack = ingest.load_stack(items, ["B04", "B05"], crs="native").compute()
    assert list(stack.data_vars) == ["B04", "B05", "SCL"]
    assert stack.B04.dtype == np.uint16 and stack.SCL.dtype == np.uint8
    with rasterio.open(items[0].assets["red"].href) as ds:
        b04 = ds.read(1)
    with rasterio.open(items[0].assets["rededge1"].href) as ds:
        b05 = ds.read(1)
    with rasterio.open(items[0].assets["scl"].href) as ds:
        scl = ds.read(1)
    assert np.array_equal(stack.B04.isel(time=0).values, b04)
    assert np.array_equal(stack.B05.isel(time=0).values, np.repeat(np.repeat(b05, 2, 0), 2, 1))
    assert np.array_equal(stack.SCL.isel(time=0).values, np.repeat(np.repeat(scl, 2, 0), 2, 1))
    assert stack.boa_offset.values.tolist() == [-1000] * 3


def test_default_target_grid_is_laea_10m(s2_archive) -> None:
    items = _items(s2_archive)[:2]
    stack = ingest.load_stack(items, ["B08"], aoi=SMALL_AOI)
    assert int(stack.spatial_ref.values) == 3035
    assert float(stack.x[1] - stack.x[0]) == 10.0 and float(stack.y[0] - stack.y[1]) == 10.0
    assert stack.B08.chunks is not None
    values = stack.B08.isel(time=0).values
    assert (values > 0).mean() > 0.8  # rotated UTM scene inside the LAEA box


def test_missing_band_asset_names_item_and_asset(s2_archive) -> None:
    items = [i.clone() for i in _items(s2_archive)[:2]]
    del items[1].assets["swir16"]
    with pytest.raises(MissingAssetError, match=rf"item {items[1].id} has no asset 'swir16' \(band B11\)"):
        ingest.load_stack(items, ["B04", "B11"])
    del items[0].assets["scl"]
    with pytest.raises(MissingAssetError, match=rf"item {items[0].id} has no asset 'scl'"):
        ingest.load_stack(items, ["B04"])


def test_corrupt_or_unreachable_cog_names_href(s2_archive, tmp_path) -> None:
    items = [i.clone() for i in _items(s2_archive)[:2]]
    bad = tmp_path / "B04.tif"
    bad.write_bytes(Path(items[1].assets["red"].href.removeprefix("file://")).read_bytes()[:300])  # truncated
    items[1].assets["red"].href = str(bad)
    with pytest.raises(AssetReadError, match=re.escape(str(bad))):
        ingest.load_stack(items, ["B04"])
    items[1].assets["red"].href = str(tmp_path / "nowhere.tif")
    with pytest.raises(AssetReadError, match=r"nowhere\.tif"):
        ingest.load_stack(items, ["B04"])


def _real_item(tmp_path: Path) -> pystac.Item:
    if not REAL_TILE.exists():
        pytest.skip(f"{REAL_TILE} is absent: the real-tile test reads ../shared beside the repository")
    doc = json.loads((REAL_TILE / "S2A_29RKH_20200219_0_L2A.json").read_text())
    local = tmp_path / "tile"
    shutil.copytree(REAL_TILE, local)
    # Rewrite hrefs to the local (10x decimated) files and their real grids.
    for key, asset in list(doc["assets"].items()):
        name = asset["href"].rsplit("/", 1)[-1]
        path = local / name
        if not name.endswith(".tif") or not path.exists():
            del doc["assets"][key]
            continue
        asset["href"] = path.as_uri()
        with rasterio.open(path) as ds:
            asset["proj:shape"] = list(ds.shape)
            asset["proj:transform"] = list(ds.transform)[:6]
    doc["links"] = [link for link in doc["links"] if link["rel"] not in ("self", "canonical")]
    return pystac.Item.from_dict(doc)


def test_real_l2a_tile_through_the_same_path(tmp_path) -> None:
    item = _real_item(tmp_path)
    aoi = Aoi((230000.0, 2700000.0, 250000.0, 2720000.0), "EPSG:32629")
    items = ingest.search_items(aoi, "2020-02-01", "2020-02-29", items=[item])
    assert [i.id for i in items] == [item.id]
    assert s2.detect_provider(list(item.assets)) == "earth-search"
    cfg = feat.FeatureConfig()
    stack = ingest.load_stack(items, cfg.needed_bands, aoi=aoi, crs="native", resolution=100).compute()
    assert stack.boa_offset.values.tolist() == [0]  # baseline 02.14: no offset
    with rasterio.open(item.assets["red"].href) as ds:
        win = ds.window(*aoi.bbox)
        red = ds.read(1, window=win)
    with rasterio.open(item.assets["scl"].href) as ds:
        scl = ds.read(1, window=ds.window(*aoi.bbox))
    assert np.array_equal(stack.B04.isel(time=0).values, red)
    scl10 = np.repeat(np.repeat(scl, 2, 0), 2, 1)
    assert np.array_equal(stack.SCL.isel(time=0).values, scl10)
    steps = feat._days(feat.time_steps(2020))
    dn = {b: stack[b].values.reshape(1, -1) for b in cfg.needed_bands}
    feats, score = feat.series_features(
        dn,
        stack.SCL.values.reshape(1, -1),
        stack.boa_offset.values,
        feat._days(stack.time.values),
        steps,
        cfg,
    )
    valid = ~np.isin(scl10.ravel(), [0, 1, 2, 3, 8, 9]) & (red.ravel() > 0)
    assert np.array_equal(score.astype(bool), valid)
    assert np.isnan(feats[:, :, ~valid]).all()
    b04 = feats[cfg.names.index("B04")]
    assert np.allclose(b04[:, valid], red.ravel()[valid] / 10000)  # one observation held over all steps
