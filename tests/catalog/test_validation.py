"""Offline STAC validation against the schema folder (no network)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from landstack.catalog import CatalogError, load_products
from landstack.catalog.stac import collection_for
from landstack.catalog.validation import StacValidationError, StacValidator

SCHEMAS = Path(__file__).resolve().parents[2].parent / "shared" / "schemas" / "stac"


@pytest.fixture(scope="module")
def validator() -> StacValidator:
    if not SCHEMAS.is_dir():
        pytest.skip(f"{SCHEMAS} is absent: extension schemas are read from ../shared beside the repository")
    return StacValidator(SCHEMAS)


@pytest.fixture(scope="module")
def collections() -> list[dict[str, Any]]:
    return [collection_for(p, layer, "../inspire/x.xml") for p in load_products() for layer in p.layers]


def test_every_catalogue_collection_validates_with_all_its_extensions(
    validator: StacValidator, collections: list[dict[str, Any]]
) -> None:
    for c in collections:
        result = validator.validate(c)
        assert result.ok, (c["id"], result.errors)
        assert result.checked == [
            "https://schemas.stacspec.org/v1.1.0/collection-spec/json-schema/collection.json",
            *c["stac_extensions"],
        ]
        assert result.note is None


def test_errors_name_the_place_and_the_problem(
    validator: StacValidator, collections: list[dict[str, Any]]
) -> None:
    doc = copy.deepcopy(collections[0])
    doc["extent"]["spatial"]["bbox"] = [[0, 0, 1]]
    doc["item_assets"]["data"]["raster:bands"][0]["data_type"] = "float128"
    result = validator.validate(doc)
    assert not result.ok
    text = result.reason()
    assert "extent/spatial/bbox/0" in text
    assert "raster" in text and "float128" in text
    with pytest.raises(StacValidationError, match=rf"STAC collection '{doc['id']}' is invalid"):
        validator.check(doc)


def test_an_item_with_a_collection_needs_the_collection_link(validator: StacValidator) -> None:
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": "x",
        "collection": "c",
        "geometry": None,
        "properties": {"datetime": "2021-01-01T00:00:00Z"},
        "links": [],
        "assets": {},
    }
    result = validator.validate(item)
    assert "needs a link with rel 'collection'" in result.reason()
    item["links"] = [{"rel": "collection", "href": "./c.json"}]
    assert validator.validate(item).ok


def test_an_unknown_extension_is_named(validator: StacValidator, collections: list[dict[str, Any]]) -> None:
    doc = copy.deepcopy(collections[0])
    url = "https://stac-extensions.github.io/unheard-of/v9.9.9/schema.json"
    doc["stac_extensions"].append(url)
    result = validator.validate(doc)
    assert len(result.errors) == 1
    assert url in result.errors[0] and "not available offline" in result.errors[0]


def test_not_a_stac_document(validator: StacValidator) -> None:
    assert "Feature, Collection or Catalog" in validator.validate({"type": "Thing"}).reason()
    assert "stac_version" in validator.validate({"type": "Feature", "id": "x"}).reason()


def test_without_a_schema_folder_only_core_is_checked(
    monkeypatch: pytest.MonkeyPatch, collections: list[dict[str, Any]]
) -> None:
    import landstack.catalog.validation as validation

    monkeypatch.setattr(validation, "default_schemas_dir", lambda: None)
    v = StacValidator()
    result = v.validate(collections[0])
    assert result.ok
    assert result.checked == [
        "https://schemas.stacspec.org/v1.1.0/collection-spec/json-schema/collection.json"
    ]
    assert result.unchecked == collections[0]["stac_extensions"]
    assert result.note and "bundled with pystac" in result.note
    broken = {**collections[0], "license": 42}
    assert not v.validate(broken).ok


def test_a_missing_schema_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="LANDSTACK_STAC_SCHEMAS_DIR"):
        StacValidator(tmp_path / "nope")
