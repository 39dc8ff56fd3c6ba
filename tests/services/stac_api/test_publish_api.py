"""`landstack publish --api`: publishing through the API's transactions with a bearer token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from landstack.catalog.build import build_catalogue
from landstack.pipelines.publish import ApiTarget, PublishError, publish
from landstack.pipelines.settings import Settings
from landstack.storage import ObjectStore

pytestmark = pytest.mark.integration

C = "emc-built-s-10m"


def _store(tmp_path: Path, api: Any, make_item: Any) -> tuple[ObjectStore, Settings]:
    root = tmp_path / "store"
    build_catalogue(root / "catalog", api_url=api.url)
    for i in range(3):
        folder = root / "products" / C / f"b{i}"
        folder.mkdir(parents=True)
        (folder / "data.tif").write_bytes(b"II*\x00")
        doc = make_item(C, f"built-{i}", "./data.tif", 2018, 20.0 + i, 40.0)
        (folder / f"b{i}.json").write_text(json.dumps(doc))
    broken = make_item(C, "built-broken", "./data.tif", 2018, 20.0, 40.0)
    broken["bbox"] = [1, 2]
    (root / "products" / C / "b0" / "broken.json").write_text(json.dumps(broken))
    settings = Settings(store_url=root.as_uri(), local_dir=tmp_path / "local")
    return settings.store(), settings


def test_publish_through_the_api(
    api: Any, make_item: Any, tokens: dict[str, str], tmp_path: Path, schemas_dir: Path
) -> None:
    store, settings = _store(tmp_path, api, make_item)
    settings = settings.model_copy(update={"stac_schemas_dir": schemas_dir})
    for _ in range(2):  # the second run updates in place (collections PUT, items upserted)
        target = ApiTarget(api.url, tokens["write"])
        try:
            report = publish(store, target, settings=settings)
        finally:
            target.close()
        assert len(report.collections) == 24
        assert report.items_loaded == 3
        assert [r.id for r in report.refused] == ["built-broken"]
        assert "bbox" in report.refused[0].reason
    found = httpx.get(f"{api.url}/collections/{C}/items").json()["features"]
    assert sorted(f["id"] for f in found) == ["built-0", "built-1", "built-2"]
    assert found[0]["assets"]["data"]["href"].startswith(store.url)


def test_publish_with_a_read_only_token_says_which_setting_to_fix(
    api: Any, make_item: Any, tokens: dict[str, str], tmp_path: Path
) -> None:
    store, settings = _store(tmp_path, api, make_item)
    target = ApiTarget(api.url, tokens["read"])
    try:
        with pytest.raises(PublishError, match=r"HTTP 403.*LANDSTACK_STAC_API_TOKEN"):
            publish(store, target, settings=settings)
    finally:
        target.close()


def test_bulk_insert_conflicts_and_unknown_collections(
    api: Any, make_item: Any, tokens: dict[str, str]
) -> None:
    auth = {"Authorization": f"Bearer {tokens['write']}"}
    items = {f"bulk-{i}": make_item(C, f"bulk-{i}", "s3://x/y.tif", 2018, 1.0 + i, 1.0) for i in range(3)}
    url = f"{api.url}/collections/{C}/bulk_items"
    first = httpx.post(url, json={"items": items, "method": "insert"}, headers=auth)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 3, "success": 3, "skipped": 0, "errors": []}
    again = httpx.post(url, json={"items": items, "method": "insert"}, headers=auth)
    assert again.status_code == 409
    assert "upsert" in again.json()["description"]
    assert httpx.post(url, json={"items": items, "method": "upsert"}, headers=auth).status_code == 200
    mismatch = httpx.post(f"{api.url}/collections/no-such/bulk_items", json={"items": items}, headers=auth)
    assert mismatch.status_code == 200
    assert [e["id"] for e in mismatch.json()["errors"]] == list(items)
    orphans = {k: {**v, "collection": "no-such"} for k, v in items.items()}
    unknown = httpx.post(f"{api.url}/collections/no-such/bulk_items", json={"items": orphans}, headers=auth)
    assert unknown.status_code == 404, unknown.text
    for item_id in items:
        assert httpx.delete(f"{api.url}/collections/{C}/items/{item_id}", headers=auth).status_code == 200
