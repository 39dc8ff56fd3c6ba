"""Fields extension, /collections paging and per-collection queryables, checked directly."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pystac_client import Client

from landstack.catalog import get_layer, layer_ids

pytestmark = pytest.mark.integration

C = "hrl-imperviousness-imd"


def _first(api: Any, fields: Any) -> dict[str, Any]:
    r = httpx.post(f"{api.url}/search", json={"collections": [C], "limit": 1, "fields": fields})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    return dict(r.json()["features"][0])


def test_exclude_of_a_nested_property_removes_only_it(api: Any) -> None:
    item = _first(api, {"exclude": ["properties.eo:cloud_cover"]})
    assert "eo:cloud_cover" not in item["properties"]
    assert {"landstack:coverage", "datetime", "proj:code"} <= set(item["properties"])
    assert {"geometry", "assets", "bbox", "links"} <= set(item)


def test_include_of_a_nested_property_survives_excluding_its_parent(api: Any) -> None:
    item = _first(api, {"include": ["properties.eo:cloud_cover"], "exclude": ["properties"]})
    assert item["properties"] == {"eo:cloud_cover": pytest.approx(item["properties"]["eo:cloud_cover"])}
    assert item["properties"]["eo:cloud_cover"] >= 5
    assert set(item) == {"type", "id", "collection", "properties", "links"}


def test_an_empty_include_means_the_default_set(api: Any) -> None:
    item = _first(api, {"include": [], "exclude": ["geometry"]})
    assert set(item) == {"type", "stac_version", "id", "bbox", "links", "assets", "properties"}
    assert set(item["properties"]) <= {"datetime", "start_datetime", "end_datetime"}
    full = _first(api, {"exclude": ["geometry"]})
    assert "geometry" not in full and "eo:cloud_cover" in full["properties"]


def test_get_fields_and_items_endpoint(api: Any) -> None:
    r = httpx.get(
        f"{api.url}/search",
        params={"collections": C, "limit": 1, "fields": "-properties,+properties.eo:cloud_cover"},
    )
    item = r.json()["features"][0]
    assert list(item["properties"]) == ["eo:cloud_cover"] and "geometry" not in item
    r = httpx.get(f"{api.url}/collections/{C}/items", params={"limit": 2, "fields": "-assets"})
    assert r.status_code == 200, r.text
    assert all("assets" not in f and "geometry" in f for f in r.json()["features"])


def test_collections_paging_is_followed_by_pystac_client(api: Any) -> None:
    first = httpx.get(f"{api.url}/collections", params={"limit": 5}).json()
    assert len(first["collections"]) == 5
    nxt = next(lk for lk in first["links"] if lk["rel"] == "next")
    assert nxt["type"] == "application/json"
    second = httpx.get(nxt["href"]).json()
    assert [lk["rel"] for lk in second["links"] if lk["rel"] in ("prev", "previous")] == ["prev"]
    client = Client.open(api.url)
    ids = [c.id for c in client.collection_search(limit=5).collections()]
    assert len(ids) == len(set(ids))
    assert set(layer_ids()) <= set(ids)


@pytest.mark.parametrize(
    "cid", ["clcplus-backbone-ras", "hrl-imperviousness-imd", "emc-built-s-100m", "cisc-classes"]
)
def test_every_product_collection_has_its_queryables(api: Any, cid: str) -> None:
    _, layer = get_layer(cid)
    coll = httpx.get(f"{api.url}/collections/{cid}").json()
    link = next(lk for lk in coll["links"] if lk["rel"].endswith("/queryables"))
    q = httpx.get(link["href"]).json()
    props = q["properties"]
    assert props["proj:code"]["enum"] == [layer.grid.crs]
    assert props["gsd"]["enum"] == [layer.grid.resolution_m]
    assert {"datetime", "start_datetime", "end_datetime", "id", "geometry"} <= set(props)


def test_all_product_collections_advertise_queryables(api: Any) -> None:
    for cid in layer_ids():
        r = httpx.get(f"{api.url}/collections/{cid}/queryables")
        assert r.status_code == 200 and "proj:code" in r.json()["properties"], cid
