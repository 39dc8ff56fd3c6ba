"""The synthetic Sentinel-2 L2A archive: structure, STAC validity, scaling, truth and determinism."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import numpy as np
import pandas as pd
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from landstack.pipelines import s2
from landstack.pipelines.settings import Settings
from landstack.pipelines.synth import Aoi, SynthConfig, make_scene, write_archive
from landstack.pipelines.synth.scene import CLASSES
from landstack.storage import ObjectStore


def _path(store: ObjectStore, key: str) -> str:
    return store.path(key)


def test_scene_has_every_class_and_is_deterministic() -> None:
    aoi = Aoi.around(10.0, 50.0, 4000)
    a, b, c = make_scene(aoi, seed=5), make_scene(aoi, seed=5), make_scene(aoi, seed=6)
    assert set(np.unique(a.landcover)) == set(CLASSES)
    assert np.array_equal(a.landcover, b.landcover) and np.array_equal(a.imperviousness, b.imperviousness)
    assert not np.array_equal(a.landcover, c.landcover)
    assert a.crs == "EPSG:32632"
    # Sealed pixels carry >= 50 % imperviousness, natural parcels mostly none; both built-up kinds exist.
    assert a.imperviousness[a.landcover == 1].min() >= 50
    assert np.median(a.imperviousness[a.landcover == 2]) == 0
    assert {1, 2} <= set(np.unique(a.builtup))
    assert 0 < a.imperviousness[a.builtup > 0].mean() < 100


def test_archive_layout_bands_and_resolutions(s2_archive) -> None:
    store, result, _cfg = s2_archive
    assert len(result.item_keys) > 25
    item = store.read_json(result.item_keys[0])
    assert set(s2.PROVIDERS["earth-search"].values()) <= set(item["assets"])
    h, w = result.scene.shape
    for band, key in (("B02", "blue"), ("B05", "rededge1"), ("B01", "coastal"), ("SCL", "scl")):
        href = item["assets"][key]["href"]
        assert href.startswith("file://") and href.endswith(f"/{band}.tif")
        path = href.removeprefix("file://")
        ok, errors, _ = cog_validate(path, quiet=True)
        assert ok, errors
        with rasterio.open(path) as ds:
            k = s2.BANDS[band].resolution
            assert ds.res == (k, k)
            assert ds.shape == (h * 10 // k, w * 10 // k)
            assert ds.crs.to_epsg() == 32633
            assert ds.dtypes[0] == ("uint8" if band == "SCL" else "uint16")
            assert item["assets"][key]["proj:shape"] == list(ds.shape)
            assert item["assets"][key]["proj:transform"] == list(ds.transform)[:6]


def test_items_and_collection_validate_against_stac_schemas(s2_archive, schemas) -> None:
    store, result, _ = s2_archive
    for key in result.item_keys[:5]:
        doc = store.read_json(key)
        assert schemas.validate_stac(doc) == []
        assert 0 <= doc["properties"]["eo:cloud_cover"] <= 100
        assert doc["properties"]["s2:processing_baseline"]
        assert {"eo", "projection", "raster"} <= {u.split("/")[3] for u in doc["stac_extensions"]}
    collection = store.read_json(result.collection_key)
    assert schemas.validate_stac(collection) == []
    assert len([link for link in collection["links"] if link["rel"] == "item"]) == len(result.item_keys)


def test_clouds_shadows_and_missing_acquisitions(s2_archive) -> None:
    store, result, cfg = s2_archive
    seen: set[int] = set()
    covers = []
    for key in result.item_keys:
        doc = store.read_json(key)
        with rasterio.open(doc["assets"]["scl"]["href"]) as ds:
            scl = ds.read(1)
        seen |= set(np.unique(scl).tolist())
        covers.append(doc["properties"]["eo:cloud_cover"])
        # eo:cloud_cover is the share of SCL 8/9/10 pixels.
        assert doc["properties"]["eo:cloud_cover"] == pytest.approx(
            np.isin(scl, [8, 9, 10]).mean() * 100, abs=1e-3
        )
    assert {3, 4, 8, 9} <= seen
    assert min(covers) < 5 and max(covers) > 60
    expected = len(range(0, (cfg.end - cfg.start).days + 1, cfg.revisit_days))
    assert len(result.item_keys) < expected  # some acquisitions are missing


def test_reflectance_scaling_follows_processing_baseline(s2_archive) -> None:
    store, result, _ = s2_archive
    for key in result.item_keys:
        doc = store.read_json(key)
        baseline = doc["properties"]["s2:processing_baseline"]
        band = doc["assets"]["red"]["raster:bands"][0]
        assert band["scale"] == 1e-4
        assert band["offset"] == pytest.approx(s2.boa_offset(baseline) / 10000)
    assert s2.boa_offset("04.00") == -1000 and s2.boa_offset("02.14") == 0
    assert s2.boa_offset("05.09", offset_applied=True) == 0
    refl = np.array([0.0001, 0.05, 0.3, 1.2])
    for offset in (0, -1000):
        dn = s2.to_dn(refl, offset)
        assert np.allclose(s2.to_reflectance(dn, offset), refl, atol=1e-4)
    assert s2.to_dn(np.array([0.1]), -1000)[0] == 2000


def test_truth_layers_and_sample_points(s2_archive) -> None:
    store, result, _ = s2_archive
    scene = result.scene
    with rasterio.open(_path(store, result.truth_keys["landcover"])) as ds:
        assert np.array_equal(ds.read(1), scene.landcover)
        assert ds.nodata == 255
    with rasterio.open(_path(store, result.truth_keys["imperviousness"])) as ds:
        assert np.array_equal(ds.read(1), scene.imperviousness)
    pts = pd.read_parquet(_path(store, result.samples_key))
    assert {"x", "y", "label", "group", "imperviousness", "builtup"} <= set(pts.columns)
    inv = ~scene.transform
    cols, rows = inv * (pts["x"].to_numpy(), pts["y"].to_numpy())
    r, c = np.floor(rows).astype(int), np.floor(cols).astype(int)
    assert np.array_equal(scene.landcover[r, c], pts["label"].to_numpy())
    assert np.array_equal(scene.objects[r, c], pts["group"].to_numpy())
    manifest = store.read_json("archive/scene.json")
    assert manifest["seed"] == 11 and manifest["crs"] == "EPSG:32633"


def test_band_id_provider_and_determinism(tmp_path) -> None:
    cfg = SynthConfig(
        Aoi.around(16.3, 48.2, 700),
        dt.date(2023, 6, 1),
        dt.date(2023, 6, 30),
        seed=4,
        provider="band-id",
        revisit_days=10,
    )
    a, b = ObjectStore((tmp_path / "a").as_uri()), ObjectStore((tmp_path / "b").as_uri())
    ra, rb = write_archive(cfg, a, "x"), write_archive(cfg, b, "x")
    item = a.read_json(ra.item_keys[0])
    assert {"B02", "B8A", "SCL"} <= set(item["assets"])
    assert "earthsearch:boa_offset_applied" not in item["properties"]
    for ka, kb in zip(ra.item_keys, rb.item_keys, strict=True):
        da_, db_ = a.read_json(ka), b.read_json(kb)
        assert da_["properties"] == db_["properties"]
        with (
            rasterio.open(da_["assets"]["B04"]["href"]) as x,
            rasterio.open(db_["assets"]["B04"]["href"]) as y,
        ):
            assert np.array_equal(x.read(1), y.read(1))


@pytest.mark.integration
def test_archive_on_s3_through_moto() -> None:
    boto3 = pytest.importorskip("boto3")
    from landstack.pipelines import ingest

    endpoint = "http://127.0.0.1:55900"
    settings = Settings(
        store_url=f"s3://ls-synth-{uuid.uuid4().hex[:8]}/root",
        s3_endpoint_url=endpoint,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    bucket = settings.store_url.split("/")[2]
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    try:
        client.create_bucket(Bucket=bucket)
    except Exception as e:  # the service is not running
        pytest.skip(f"moto S3 at {endpoint} is not reachable ({e}); start it with `landstack services up`")
    store = settings.store()
    cfg = SynthConfig(
        Aoi.around(16.3, 48.2, 700),
        dt.date(2023, 6, 1),
        dt.date(2023, 6, 20),
        seed=3,
        revisit_days=10,
        missing_fraction=0,
    )
    result = write_archive(cfg, store, "arch")
    collection = json.loads(store.read_bytes(result.collection_key))
    assert collection["id"] == cfg.collection_id
    items = ingest.read_static_items(store.href(result.collection_key), settings)
    assert [i.id for i in items] == [k.split("/")[-1].removesuffix(".json") for k in result.item_keys]
    assert items[0].assets["red"].href.startswith(f"s3://{bucket}/root/arch/")
    ingest.configure_gdal(settings)
    try:
        stack = ingest.load_stack(items, ["B04"], crs="native").compute()
    finally:
        ingest.configure_gdal(Settings(store_url="file:///tmp"))
    with store.open(f"arch/{items[0].id}/B04.tif") as f, rasterio.open(f) as ds:
        expected = ds.read(1)
    assert np.array_equal(stack["B04"].isel(time=0).values, expected)
