"""Searching the published catalogue with pystac-client, and the corrected server deviations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from pystac_client import Client

from landstack.catalog import layer_ids
from landstack.catalog.validation import StacValidator

pytestmark = pytest.mark.integration

C = "hrl-imperviousness-imd"
N_ITEMS = 40


@pytest.fixture(scope="module")
def client(api: Any) -> Client:
    return Client.open(api.url)


def test_conformance_declares_every_extension(client: Client) -> None:
    for cc in (
        "CORE",
        "ITEM_SEARCH",
        "FILTER",
        "SORT",
        "FIELDS",
        "QUERY",
        "COLLECTIONS",
        "FEATURES",
        "TRANSACTION",
        "COLLECTION_SEARCH",
    ):
        assert client.conforms_to(cc), cc
    body = httpx.get(f"{client.self_href.rstrip('/')}/conformance").json()["conformsTo"]
    assert any(c.endswith("ogcapi-features/extensions/transaction") for c in body)


def test_every_catalogue_collection_is_published(client: Client) -> None:
    assert sorted(c.id for c in client.get_collections()) == sorted(layer_ids())


def test_search_by_bbox(client: Client) -> None:
    # columns start at lon 10.0 + 0.5 k, rows at lat 48.0 + 0.5 r: this box touches items 0 and 1 only
    found = sorted(i.id for i in client.search(collections=[C], bbox=[10.1, 48.1, 10.6, 48.4]).items())
    assert found == ["imd-000", "imd-001"]


def test_search_by_datetime(client: Client) -> None:
    found = list(client.search(collections=[C], datetime="2019-03-01/2019-04-01", limit=100).items())
    # items i % 4 == 1 cover 2019
    assert sorted(i.id for i in found) == [f"imd-{i:03d}" for i in range(N_ITEMS) if i % 4 == 1]


def test_search_by_cql2_text_and_json_filter(client: Client) -> None:
    text = client.search(
        collections=[C],
        filter='"landstack:coverage" >= 30 AND "landstack:tile" LIKE \'E4%\'',
        filter_lang="cql2-text",
        limit=100,
    )
    assert sorted(i.id for i in text.items()) == [f"imd-{i:03d}" for i in range(30, N_ITEMS)]
    as_json = {
        "op": "and",
        "args": [
            {"op": "<", "args": [{"property": "landstack:coverage"}, 3]},
            {
                "op": "s_intersects",
                "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [10.75, 48.25]}],
            },
        ],
    }
    found = client.search(collections=[C], filter=as_json, filter_lang="cql2-json", method="POST")
    assert [i.id for i in found.items()] == ["imd-001"]


def test_bbox_datetime_and_filter_together(client: Client) -> None:
    found = client.search(
        collections=[C],
        bbox=[9.0, 47.0, 15.0, 48.9],
        datetime="2020-01-01/2021-12-31",
        filter='"landstack:coverage" > 5',
        filter_lang="cql2-text",
    )
    # rows 0 and 1 (i < 16) touch the bbox, years 2020/2021 are i % 4 in (2, 3)
    assert sorted(i.id for i in found.items()) == [f"imd-{i:03d}" for i in range(6, 16) if i % 4 in (2, 3)]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sort_descending(client: Client, method: str) -> None:
    found = client.search(collections=[C], sortby="-landstack:coverage", max_items=5, method=method)
    assert [i.properties["landstack:coverage"] for i in found.items()] == [39.0, 38.0, 37.0, 36.0, 35.0]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_paging_through_several_pages(client: Client, method: str) -> None:
    search = client.search(collections=[C], limit=7, sortby="id", method=method)
    pages = list(search.pages_as_dicts())
    assert len(pages) == 6  # 40 items, 7 per page
    ids = [f["id"] for p in pages for f in p["features"]]
    assert ids == [f"imd-{i:03d}" for i in range(N_ITEMS)]
    assert any(lk["rel"] == "prev" for lk in pages[1]["links"])


def test_fields_responses_are_geojson(api: Any) -> None:
    for resp in (
        httpx.post(
            f"{api.url}/search", json={"collections": [C], "fields": {"include": ["properties.datetime"]}}
        ),
        httpx.get(f"{api.url}/search", params={"collections": C, "fields": "properties.datetime"}),
        httpx.get(f"{api.url}/collections/{C}/items", params={"fields": "-assets"}),
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/geo+json"
        feature = resp.json()["features"][0]
        assert "assets" not in feature


def test_sort_accepts_collections_as_a_string(api: Any) -> None:
    body = {
        "collections": C,
        "sortby": [{"field": "properties.landstack:coverage", "direction": "asc"}],
        "limit": 2,
    }
    resp = httpx.post(f"{api.url}/search", json=body)
    assert resp.status_code == 200, resp.text
    assert [f["id"] for f in resp.json()["features"]] == ["imd-000", "imd-001"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"landstack:coverage": {"gte": 37}}, [37, 38, 39]),
        ({"landstack:coverage": {"neq": 0, "lt": 3}}, [1, 2]),
        ({"landstack:tile": {"startsWith": "E47N3"}}, [7, 15, 23, 31, 39]),
        ({"landstack:tile": {"endsWith": "N34"}}, list(range(32, 40))),
        ({"landstack:tile": {"contains": "41N3"}}, [1, 9, 17, 25, 33]),
        ({"landstack:tile": {"in": ["E40N30", "E41N31"]}}, [0, 9]),
    ],
)
def test_query_extension_operators(api: Any, query: dict[str, Any], expected: list[int]) -> None:
    import json

    post = httpx.post(f"{api.url}/search", json={"collections": [C], "query": query, "limit": 100})
    get = httpx.get(f"{api.url}/search", params={"collections": C, "query": json.dumps(query), "limit": 100})
    for resp in (post, get):
        assert resp.status_code == 200, resp.text
        assert sorted(int(f["properties"]["landstack:coverage"]) for f in resp.json()["features"]) == expected


def test_an_unknown_query_operator_is_a_clear_400(api: Any) -> None:
    resp = httpx.post(f"{api.url}/search", json={"query": {"landstack:tile": {"like": "E4%"}}})
    assert resp.status_code == 400
    assert "query operator 'like'" in resp.text


def test_an_item_without_links_can_be_created(api: Any, make_item: Any, tokens: dict[str, str]) -> None:
    item = make_item(C, "no-links", "s3://x/y.tif", 2021, 0.0, 0.0)
    del item["links"]
    auth = {"Authorization": f"Bearer {tokens['write']}"}
    url = f"{api.url}/collections/{C}/items"
    assert httpx.post(url, json=item, headers=auth).status_code == 201
    got = httpx.get(f"{url}/no-links").json()
    assert {lk["rel"] for lk in got["links"]} >= {"self", "collection", "parent", "root"}
    assert httpx.delete(f"{url}/no-links", headers=auth).status_code == 200


def test_inspire_record_is_served_and_linked(api: Any) -> None:
    coll = httpx.get(f"{api.url}/collections/{C}").json()
    described = [lk for lk in coll["links"] if lk["rel"] == "describedby"]
    assert len(described) == 1
    assert described[0]["href"] == f"{api.url}/collections/{C}/inspire.xml"
    resp = httpx.get(described[0]["href"])
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/vnd.iso.19139+xml"
    root = etree.fromstring(resp.content)
    assert etree.QName(root).localname == "MD_Metadata"
    assert C.encode() in resp.content


def test_inspire_record_of_an_unknown_collection_is_404(api: Any) -> None:
    resp = httpx.get(f"{api.url}/collections/no-such-layer/inspire.xml")
    assert resp.status_code == 404
    assert "no-such-layer" in resp.json()["description"]


def test_everything_served_validates_offline(api: Any, schemas_dir: Path) -> None:
    validator = StacValidator(schemas_dir)
    collections = httpx.get(f"{api.url}/collections", params={"limit": 100}).json()["collections"]
    assert len(collections) == len(layer_ids())
    for c in collections:
        result = validator.validate(c)
        assert result.ok, (c["id"], result.errors)
        assert len(result.checked) == 1 + len(c["stac_extensions"])
    items = httpx.get(f"{api.url}/search", params={"limit": 100, "collections": C}).json()["features"]
    assert len(items) == N_ITEMS
    for item in items:
        result = validator.validate(item)
        assert result.ok, (item["id"], result.errors)


def test_a_period_item_keeps_its_null_datetime(
    api: Any, make_item: Any, tokens: dict[str, str], schemas_dir: Path
) -> None:
    """pgstac's own hydration drops `"datetime": null`, which STAC requires: items are hydrated here."""
    item = make_item(C, "period-item", "s3://x/y.tif", 2022, 30.0, 60.0)
    item["properties"]["datetime"] = None
    auth = {"Authorization": f"Bearer {tokens['write']}"}
    url = f"{api.url}/collections/{C}/items"
    assert httpx.post(url, json=item, headers=auth).status_code == 201
    try:
        got = httpx.get(f"{url}/period-item").json()
        found = httpx.post(f"{api.url}/search", json={"ids": ["period-item"]}).json()["features"][0]
        for served in (got, found):
            assert "datetime" in served["properties"] and served["properties"]["datetime"] is None
            assert served["assets"] == item["assets"]
            result = StacValidator(schemas_dir).validate(served)
            assert result.ok, result.errors
    finally:
        httpx.delete(f"{url}/period-item", headers=auth)


def test_collection_search(api: Any) -> None:
    found = httpx.get(f"{api.url}/collections", params={"q": "imperviousness", "limit": 100}).json()[
        "collections"
    ]
    hrl = {i for i in layer_ids() if i.startswith("hrl-imperviousness")}
    assert hrl <= {c["id"] for c in found}
    assert len(found) < len(layer_ids())
    page = httpx.get(f"{api.url}/collections", params={"limit": 5}).json()
    assert len(page["collections"]) == 5
    nxt = next(lk["href"] for lk in page["links"] if lk["rel"] == "next")
    second = httpx.get(nxt).json()["collections"]
    assert not {c["id"] for c in second} & {c["id"] for c in page["collections"]}
    sorted_desc = httpx.get(f"{api.url}/collections", params={"sortby": "-id", "limit": 3}).json()
    ids = [c["id"] for c in sorted_desc["collections"]]
    assert ids == sorted(layer_ids(), reverse=True)[:3]
