"""The fields-extension rules of landstack.stac_api.fields, without a server."""

from __future__ import annotations

from typing import Any

from landstack.stac_api.fields import DEFAULT_FIELDS, FieldsSpec

ITEM: dict[str, Any] = {
    "type": "Feature",
    "stac_version": "1.1.0",
    "id": "a",
    "collection": "c",
    "geometry": {"type": "Point", "coordinates": [0, 0]},
    "bbox": [0, 0, 0, 0],
    "links": [{"rel": "self", "href": "x"}],
    "assets": {"data": {"href": "d.tif", "roles": ["data"]}},
    "properties": {"datetime": "2021-07-01T00:00:00Z", "eo:cloud_cover": 3.0, "proj:code": "EPSG:3035"},
}


def test_no_fields_is_the_default_set() -> None:
    for spec in (FieldsSpec.from_post({"fields": {}}), FieldsSpec.from_get([""])):
        assert spec is not None and spec.include == DEFAULT_FIELDS
        out = spec.apply(ITEM)
        assert "collection" not in out and out["properties"] == {"datetime": "2021-07-01T00:00:00Z"}


def test_exclude_only_keeps_everything_else_and_leaves_the_item_untouched() -> None:
    spec = FieldsSpec.from_post({"fields": {"exclude": ["properties.eo:cloud_cover", "geometry"]}})
    assert spec is not None
    out = spec.apply(ITEM)
    assert "geometry" not in out and "eo:cloud_cover" not in out["properties"]
    assert out["properties"]["proj:code"] == "EPSG:3035" and out["assets"] == ITEM["assets"]
    assert ITEM["properties"]["eo:cloud_cover"] == 3.0 and "geometry" in ITEM


def test_exclude_with_an_empty_include_subtracts_from_the_default_set() -> None:
    spec = FieldsSpec.from_post({"fields": {"exclude": ["geometry"], "include": None}})
    assert spec is not None
    assert set(spec.apply(ITEM)) == {"type", "stac_version", "id", "bbox", "links", "assets", "properties"}


def test_include_wins_and_keeps_the_identity() -> None:
    spec = FieldsSpec.from_post(
        {"fields": {"include": ["properties.eo:cloud_cover"], "exclude": ["properties"]}}
    )
    assert spec is not None
    out = spec.apply(ITEM)
    assert out == {
        "type": "Feature",
        "id": "a",
        "collection": "c",
        "links": ITEM["links"],
        "properties": {"eo:cloud_cover": 3.0},
    }
    both = FieldsSpec.from_get(["+geometry", "-geometry"])
    assert both is not None and "geometry" in both.apply(ITEM)


def test_links_can_be_excluded_and_no_fields_key_is_no_spec() -> None:
    spec = FieldsSpec.from_post({"fields": {"include": ["id"], "exclude": ["links"]}})
    assert spec is not None and set(spec.apply(ITEM)) == {"type", "id", "collection"}
    assert FieldsSpec.from_post({"limit": 1}) is None and FieldsSpec.from_get(None) is None
