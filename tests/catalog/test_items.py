"""The STAC item builder: product layer items consistent with their collections, validated offline
against ../shared's schemas, with checksums, grids and lineage; inconsistencies named."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from landstack.catalog import get_layer
from landstack.catalog.errors import ItemError
from landstack.catalog.grid import RolloutTile, Tile, TileGrid
from landstack.catalog.items import (
    Asset,
    FileInfo,
    Input,
    build_item,
    file_info,
    item_doc,
    layer_item,
)
from landstack.catalog.stac import collection_for
from landstack.catalog.validation import StacValidator
from landstack.storage import ObjectStore, S3Options

from ..conftest import shared_path

RAS = "clcplus-backbone-ras"
IMD = "hrl-imperviousness-imd"
YEAR = 2021
CREATED = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
INPUTS = [
    Input("predictions-E40N30-25K-r1c2-2021", "s3://bucket/predictions/E40N30-25K-r1c2/item.json"),
    Input("S2A_32ULA_20210704_0_L2A", "https://earth-search.aws.element84.com/v1/collections/x/items/y"),
]


@pytest.fixture(scope="module")
def validator() -> StacValidator:
    return StacValidator(shared_path("schemas", "stac"))


def _tile(pixels: int = 64) -> Tile:
    """A corner of roll-out tile E40N30-25K-r1c2 at 10 m (small, so files stay tiny)."""
    rollout = RolloutTile.from_code("E40N30-25K-r1c2")
    x0, _y0, _x1, y1 = rollout.bounds
    return Tile(rollout.code, rollout.grid(10).sub_grid((x0, y1 - pixels * 10, x0 + pixels * 10, y1)))


def _write_cog(path: Path, grid: TileGrid, dtype: str = "uint8", nodata: float | None = 255) -> bytes:
    data = np.random.default_rng(0).integers(1, 12, grid.shape).astype(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile: dict[str, Any] = {
        "driver": "COG",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": dtype,
        "crs": grid.crs,
        "transform": grid.transform,
        "compress": "deflate",
    }
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
    return path.read_bytes()


@pytest.fixture
def files(tmp_path: Path) -> tuple[ObjectStore, Tile, dict[str, bytes]]:
    """A file:// store with a land-cover COG, its attribute table and a quicklook for one tile."""
    tile = _tile()
    root = tmp_path / "store"
    prefix = root / "products" / RAS / "t"
    blobs = {
        "data": _write_cog(prefix / "ras.tif", tile.grid),
        "attribute_table": b"<PAMDataset><PAMRasterBand band='1'/></PAMDataset>",
        "thumbnail": b"\x89PNG\r\n\x1a\nquicklook",
    }
    (prefix / "ras.tif.aux.xml").write_bytes(blobs["attribute_table"])
    (prefix / "quicklook.png").write_bytes(blobs["thumbnail"])
    return ObjectStore(root.as_uri()), tile, blobs


KEYS = {
    "data": f"products/{RAS}/t/ras.tif",
    "attribute_table": f"products/{RAS}/t/ras.tif.aux.xml",
    "thumbnail": f"products/{RAS}/t/quicklook.png",
}


def _ras_item(store: ObjectStore, tile: Tile, **kw: Any) -> dict[str, Any]:
    item = layer_item(
        RAS,
        tile,
        KEYS,
        year=YEAR,
        store=store,
        inputs=INPUTS,
        software={"torch": "2.13.0"},
        created=CREATED,
        **kw,
    )
    return item_doc(item)


def test_land_cover_item_validates_and_matches_its_collection(
    files: tuple[ObjectStore, Tile, dict[str, bytes]], validator: StacValidator
) -> None:
    store, tile, _ = files
    doc = _ras_item(store, tile)
    result = validator.validate(doc)
    assert result.ok, result.errors
    assert result.note is None  # every extension was checked against its schema
    product, layer = get_layer(RAS)
    collection = collection_for(product, layer, "../inspire/x.xml")
    # the same extensions as the collection, except item-assets (a collection-only extension)
    assert doc["stac_extensions"] == [e for e in collection["stac_extensions"] if "item-assets" not in e]
    assert result.checked[1:] == doc["stac_extensions"]
    assert set(doc["assets"]) == set(collection["item_assets"])
    for key, asset in doc["assets"].items():
        template = collection["item_assets"][key]
        assert asset["roles"] == template["roles"] and asset["type"] == template["type"], key
    data = doc["assets"]["data"]
    assert data["raster:bands"] == collection["item_assets"]["data"]["raster:bands"]
    assert data["classification:classes"] == collection["item_assets"]["data"]["classification:classes"]
    assert doc["collection"] == RAS
    links = [lk for lk in doc["links"] if lk["rel"] == "collection"]
    assert [lk["href"] for lk in links] == [f"../../../catalog/collections/{RAS}.json"]


def test_item_carries_grid_file_processing_and_time_fields(
    files: tuple[ObjectStore, Tile, dict[str, bytes]],
) -> None:
    store, tile, blobs = files
    doc = _ras_item(store, tile)
    props = doc["properties"]
    assert doc["id"] == f"{RAS}-E40N30-25K-r1c2-{YEAR}"
    assert props["proj:code"] == "EPSG:3035"
    assert props["proj:shape"] == [64, 64]
    assert props["proj:transform"] == [10.0, 0.0, 4_050_000.0, 0.0, -10.0, 3_075_000.0]
    assert props["proj:bbox"] == [4_050_000.0, 3_074_360.0, 4_050_640.0, 3_075_000.0]
    lon0, lat0, lon1, lat1 = doc["bbox"]
    assert 6.0 < lon0 < lon1 < 6.3 and 50.6 < lat0 < lat1 < 50.8
    band = doc["assets"]["data"]["raster:bands"][0]
    assert band["data_type"] == "uint8" and band["nodata"] == 255
    assert [c["value"] for c in doc["assets"]["data"]["classification:classes"]] == [
        *range(1, 12),
        253,
        254,
        255,
    ]
    for key, blob in blobs.items():
        asset = doc["assets"][key]
        assert asset["file:size"] == len(blob)
        assert asset["file:checksum"] == "1220" + hashlib.sha256(blob).hexdigest()
        assert asset["href"] == store.href(KEYS[key])
    assert props["datetime"] is None
    assert props["start_datetime"] == "2021-01-01T00:00:00Z"
    assert props["end_datetime"] == "2021-12-31T23:59:59Z"
    assert props["created"] == props["processing:datetime"] == "2026-03-01T12:00:00Z"
    assert props["version"] == "1.0.0"
    assert props["processing:level"] == "L4"
    assert "TempCNN" in props["processing:lineage"]
    assert props["processing:software"] == {"landstack": "0.1.0", "torch": "2.13.0"}
    assert props["landstack:inputs"] == [i.id for i in INPUTS]
    derived = [lk for lk in doc["links"] if lk["rel"] == "derived_from"]
    assert [lk["href"] for lk in derived] == [i.href for i in INPUTS]
    assert props["sci:citation"].endswith("2021_v01_r00)")


def test_continuous_layer_carries_its_unit(tmp_path: Path, validator: StacValidator) -> None:
    tile = _tile(32)
    store = ObjectStore((tmp_path / "s").as_uri())
    _write_cog(tmp_path / "s" / "imd.tif", tile.grid)
    doc = item_doc(layer_item(IMD, tile, {"data": "imd.tif"}, year=2018, store=store))
    assert doc["assets"]["data"]["raster:bands"][0]["unit"] == "percent"
    assert "classification:classes" in doc["assets"]["data"]  # its special codes (254, 255)
    assert validator.validate(doc).ok


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"files": {**KEYS, "preview": KEYS["thumbnail"]}}, r"asset 'preview': not an asset of collection"),
        ({"files": {"data": f"products/{RAS}/t/missing.tif"}}, r"asset 'data': .*missing.tif does not exist"),
        ({"files": {"attribute_table": KEYS["attribute_table"]}}, r"the layer's asset 'data' is missing"),
        ({"dtype": "uint16"}, r"asset 'data', field raster:bands.data_type: the file is uint16"),
        ({"nodata": 0}, r"field raster:bands.nodata: the file's nodata is 0.0 but layer .* declares 255"),
        ({"shape": 32}, r"field proj:shape: the file has \[32, 32\] pixels"),
        ({"tile": "utm"}, r"field proj:code: tile .* is on EPSG:32632"),
    ],
)
def test_inconsistencies_are_named(
    files: tuple[ObjectStore, Tile, dict[str, bytes]], tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    store, tile, _ = files
    target = KEYS
    if "files" in change:
        target = change["files"]
    elif "dtype" in change or "nodata" in change:
        _write_cog(
            tmp_path / "store" / KEYS["data"],
            tile.grid,
            change.get("dtype", "uint8"),
            change.get("nodata", 255),
        )
    elif "shape" in change:
        x0, _y0, _x1, y1 = tile.grid.bounds
        _write_cog(tmp_path / "store" / KEYS["data"], tile.grid.sub_grid((x0, y1 - 320, x0 + 320, y1)))
    elif change.get("tile") == "utm":
        tile = Tile("utm", TileGrid.from_bounds((300_000, 5_500_000, 300_640, 5_500_640), 10, "EPSG:32632"))
    with pytest.raises(ItemError, match=message):
        layer_item(RAS, tile, target, year=YEAR, store=store)


def test_an_invalid_item_is_refused_naming_the_field(
    files: tuple[ObjectStore, Tile, dict[str, bytes]],
) -> None:
    store, tile, _ = files
    shared_path("schemas", "stac")
    with pytest.raises(ItemError, match=r"does not validate: .*processing:software"):
        layer_item(RAS, tile, KEYS, year=YEAR, store=store, software={"torch": 2})  # type: ignore[dict-item]


def test_generic_builder_derives_extensions_and_file_fields(validator: StacValidator) -> None:
    blob = b"weights" * 1000
    info = FileInfo.of_bytes(blob)
    assert info == FileInfo(7000, "1220" + hashlib.sha256(blob).hexdigest())
    geometry = {"type": "Polygon", "coordinates": [[[5, 45], [6, 45], [6, 46], [5, 46], [5, 45]]]}
    item = build_item(
        "m-1",
        geometry=geometry,
        datetime=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        properties={"version": "1", "mlm:name": "m"},
        assets={"model": Asset("s3://b/model.pt", "application/octet-stream", ["mlm:model"], file=info)},
    )
    doc = item_doc(item)
    assert doc["bbox"] == [5.0, 45.0, 6.0, 46.0]
    assert doc["stac_extensions"] == [
        "https://stac-extensions.github.io/file/v2.1.0/schema.json",
        "https://stac-extensions.github.io/version/v1.2.0/schema.json",
    ]
    assert doc["assets"]["model"]["file:checksum"] == info.checksum
    assert validator.validate(doc).ok
    with pytest.raises(ItemError, match="give a datetime"):
        build_item("x", geometry=geometry, assets={})


def test_assets_with_their_own_grid() -> None:
    g10 = TileGrid.from_bounds((300_000, 5_000_000, 301_200, 5_001_200), 10, "EPSG:32632")
    g20 = TileGrid.from_bounds(g10.bounds, 20, "EPSG:32632")
    item = build_item(
        "s2",
        grid=g10,
        datetime=dt.datetime(2024, 6, 1, tzinfo=dt.UTC),
        assets={"B04": Asset("b04.tif", grid=g10), "B05": Asset("b05.tif", grid=g20)},
    )
    doc = item_doc(item)
    assert doc["properties"]["proj:shape"] == [120, 120]
    assert doc["assets"]["B04"]["proj:shape"] == [120, 120]
    assert doc["assets"]["B05"]["proj:shape"] == [60, 60]
    assert doc["assets"]["B05"]["proj:transform"][0] == 20.0
    assert "proj:code" not in doc["assets"]["B05"]


def _moto_store() -> ObjectStore:
    endpoint = ("127.0.0.1", 55900)
    try:
        socket.create_connection(endpoint, timeout=1).close()
    except OSError:
        pytest.skip("moto S3 is not running on 127.0.0.1:55900: run 'landstack services up'")
    s3 = S3Options(
        endpoint_url="http://127.0.0.1:55900", access_key_id="testing", secret_access_key="testing"
    )
    import s3fs

    bucket = f"items-{uuid.uuid4().hex[:10]}"
    opts = s3.fsspec_options()
    opts.pop("client_kwargs")
    s3fs.S3FileSystem(**opts).mkdir(bucket)
    return ObjectStore(f"s3://{bucket}/root", s3)


@pytest.mark.integration
def test_files_on_s3_are_read_through_the_store(tmp_path: Path, validator: StacValidator) -> None:
    store = _moto_store()
    tile = _tile(32)
    blob = _write_cog(tmp_path / "ras.tif", tile.grid)
    store.put_bytes("products/ras.tif", blob)
    doc = item_doc(layer_item(RAS, tile, {"data": "products/ras.tif"}, year=YEAR, store=store))
    assert doc["assets"]["data"]["href"] == f"{store.url}/products/ras.tif"
    assert doc["assets"]["data"]["file:checksum"] == "1220" + hashlib.sha256(blob).hexdigest()
    assert file_info(f"{store.url}/products/ras.tif", store).size == len(blob)
    assert validator.validate(doc).ok


@pytest.mark.parametrize("layer_id", ["emc-built-s-100m", "emc-built-s-3ss", "cisc-classes"])
def test_items_on_the_other_product_grids(layer_id: str, tmp_path: Path, validator: StacValidator) -> None:
    from landstack.catalog.grid import Aoi, layer_tiles

    _, layer = get_layer(layer_id)
    (full,) = layer_tiles(layer.grid, Aoi.around(16.37, 48.21, 2000))
    x0, _y0, _x1, y1 = full.grid.bounds
    r = full.grid.resolution
    tile = Tile(full.id, full.grid.sub_grid((x0, y1 - 16 * r, x0 + 16 * r, y1)))
    store = ObjectStore((tmp_path / "s").as_uri())
    _write_cog(tmp_path / "s" / "x.tif", tile.grid, layer.dtype, layer.nodata)
    doc = item_doc(layer_item(layer_id, tile, {"data": "x.tif"}, year=2018, store=store))
    assert validator.validate(doc).ok
    assert doc["properties"]["proj:code"] == layer.grid.crs
    assert doc["properties"]["proj:shape"] == [16, 16]
    assert doc["assets"]["data"]["raster:bands"][0]["data_type"] == layer.dtype
