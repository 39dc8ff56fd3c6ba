"""Asset hrefs a client on another machine can fetch: the read-only store route with range
requests (opened remotely by rasterio through GDAL's /vsicurl/), a public base URL with the
s3:// href kept as an alternate, and presigned URLs against the local S3 endpoint.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
import rasterio

from landstack.stac_api import ApiSettings
from landstack.stac_api.assets import ALTERNATE_EXTENSION, AssetLinker
from landstack.storage import ObjectStore, S3Options

pytestmark = pytest.mark.integration

LC = "clcplus-backbone-ras"
COGS = Path(__file__).resolve().parents[1] / "tiler" / "product_cogs.py"


def _product_cogs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("landstack_test_product_cogs", COGS)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def published_cog(api: Any, tokens: dict[str, str]) -> tuple[dict[str, Any], np.ndarray]:
    """A real land-cover COG in the API's store and its item, created through the transaction API."""
    pc = _product_cogs()
    data = pc.land_cover(2019, 0)
    folder = api.store / "products" / LC / "asset-test"
    cog = folder / "data.tif"
    pc.write_cog(cog, data, 2_900_000.0, 1_800_000.0, LC)  # far from every other test item
    key = cog.relative_to(api.store).as_posix()
    item = pc.item_for(api.store, LC, "asset-test", key, 2019, 2_900_000.0, 1_800_000.0)
    r = httpx.post(
        f"{api.url}/collections/{LC}/items", json=item, headers={"Authorization": f"Bearer {tokens['write']}"}
    )
    assert r.status_code in (200, 201), r.text
    return item, data


def test_a_product_cog_opens_remotely_through_its_href(api: Any, published_cog: Any) -> None:
    item, data = published_cog
    served = httpx.get(f"{api.url}/collections/{LC}/items/{item['id']}").json()
    href = served["assets"]["data"]["href"]
    assert href == f"{api.url}/store/products/{LC}/asset-test/data.tif"
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), rasterio.open(href) as ds:
        assert ds.driver == "GTiff" and ds.crs.to_epsg() == 3035
        np.testing.assert_array_equal(ds.read(1), data)
        assert ds.colormap(1)[1][:3] == (255, 1, 0)  # the catalogue's palette travels with the COG
    # the stored item keeps the store's own href: rewriting happens in the response only
    with psycopg.connect(api.settings.dsn) as conn:
        row = conn.execute(
            "SELECT content->'assets'->'data'->>'href' FROM pgstac.items WHERE id = %s", ("asset-test",)
        ).fetchone()
    assert row is not None and row[0].startswith("file://")


def test_search_results_carry_the_public_hrefs(api: Any, published_cog: Any) -> None:
    r = httpx.post(f"{api.url}/search", json={"ids": ["asset-test"], "collections": [LC]})
    (feature,) = r.json()["features"]
    assert feature["assets"]["data"]["href"].startswith(f"{api.url}/store/")


def test_the_store_route_answers_ranges_and_refuses_the_rest(api: Any, published_cog: Any) -> None:
    url = f"{api.url}/store/products/{LC}/asset-test/data.tif"
    size = (api.store / "products" / LC / "asset-test" / "data.tif").stat().st_size
    head = httpx.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == size
    assert head.headers["accept-ranges"] == "bytes"
    part = httpx.get(url, headers={"Range": "bytes=4-19", "Accept-Encoding": "br, gzip"})
    assert part.status_code == 206 and part.headers["content-range"] == f"bytes 4-19/{size}"
    assert part.content == (api.store / "products" / LC / "asset-test" / "data.tif").read_bytes()[4:20]
    tail = httpx.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and len(tail.content) == 10
    assert httpx.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416
    assert httpx.get(f"{api.url}/store/products/{LC}/nothing.tif").status_code == 404
    # only the public prefixes are served, and nothing outside the store
    (api.store / "models").mkdir(exist_ok=True)
    (api.store / "models" / "secret.pt").write_bytes(b"weights")
    assert httpx.get(f"{api.url}/store/models/secret.pt").status_code == 404
    assert httpx.get(f"{api.url}/store/products/../models/secret.pt").status_code == 404


def _item_with(href: str) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": "x",
        "collection": LC,
        "stac_extensions": [],
        "links": [],
        "assets": {"data": {"href": href, "roles": ["data"]}, "other": {"href": "https://elsewhere/x.tif"}},
    }


def test_public_base_url_keeps_the_s3_href_as_an_alternate() -> None:
    settings = ApiSettings(store_url="s3://landstack-products/prod", asset_base_url="https://cdn.example/lc/")
    linker = AssetLinker(settings)
    item = linker.item(_item_with("s3://landstack-products/prod/products/a b/x.tif"), "http://api")
    assert item["assets"]["data"]["href"] == "https://cdn.example/lc/products/a%20b/x.tif"
    assert (
        item["assets"]["data"]["alternate"]["s3"]["href"] == "s3://landstack-products/prod/products/a b/x.tif"
    )
    assert item["assets"]["other"]["href"] == "https://elsewhere/x.tif"  # not in the store: as it was
    assert ALTERNATE_EXTENSION in item["stac_extensions"]


def test_map_links_come_from_the_tiler_setting() -> None:
    linker = AssetLinker(ApiSettings(tiler_url="https://tiles.example/"))
    item = linker.item(_item_with("s3://b/x.tif"), "http://api")
    rels = {lk["rel"]: lk["href"] for lk in item["links"]}
    assert rels["xyz"].startswith(
        f"https://tiles.example/collections/{LC}/items/x/tiles/WebMercatorQuad/{{z}}/"
    )
    assert rels["wmts"].endswith("/WMTSCapabilities.xml?assets=data")
    collection = linker.collection({"id": LC, "links": [], "stac_extensions": []})
    assert {lk["rel"] for lk in collection["links"]} == {"xyz", "wmts", "preview"}


def _moto_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 55900), timeout=0.5):
            return True
    except OSError:
        return False


def test_presigned_urls_fetch_from_s3() -> None:
    if not _moto_up():
        pytest.skip("moto S3 is not running on 127.0.0.1:55900: run 'landstack services up'")
    s3 = S3Options(
        endpoint_url="http://127.0.0.1:55900", access_key_id="testing", secret_access_key="testing"
    )
    bucket = f"presign-{uuid.uuid4().hex[:12]}"
    store = ObjectStore(f"s3://{bucket}/root", s3)
    store.fs.call_s3("create_bucket", Bucket=bucket)
    store.put_bytes("products/x/data.json", json.dumps({"ok": 1}).encode())
    settings = ApiSettings(
        store_url=f"s3://{bucket}/root",
        s3_endpoint_url="http://127.0.0.1:55900",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        asset_presign_seconds=600,
    )
    item = AssetLinker(settings).item(_item_with(f"s3://{bucket}/root/products/x/data.json"), "http://api")
    href = item["assets"]["data"]["href"]
    assert (
        href.startswith(f"http://127.0.0.1:55900/{bucket}/root/products/x/data.json?") and "Signature" in href
    )
    assert httpx.get(href).json() == {"ok": 1}
    assert item["assets"]["data"]["alternate"]["s3"]["href"].startswith(f"s3://{bucket}/")
