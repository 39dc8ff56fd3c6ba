"""STAC collections from the specs validate offline against core and every declared extension."""

from __future__ import annotations

from types import ModuleType

import pytest

from landstack.catalog import get_layer, layer_ids, load_products
from landstack.catalog.stac import EXT, collection_for


@pytest.mark.parametrize("layer_id", layer_ids())
def test_collection_validates(layer_id: str, schemas: ModuleType) -> None:
    product, layer = get_layer(layer_id)
    doc = collection_for(product, layer, record_href=f"../inspire/{layer_id}.xml")
    assert schemas.validate_stac(doc) == []


def test_collections_use_the_required_extensions() -> None:
    product, layer = get_layer("clcplus-backbone-ras")
    doc = collection_for(product, layer, record_href="x.xml")
    for name in (
        "classification",
        "raster",
        "projection",
        "file",
        "item-assets",
        "processing",
        "scientific",
        "version",
    ):
        assert EXT[name] in doc["stac_extensions"]
    asset = doc["item_assets"]["data"]
    band = asset["raster:bands"][0]
    assert (band["data_type"], band["nodata"], band["spatial_resolution"]) == ("uint8", 255, 10)
    classes = {c["value"]: c for c in asset["classification:classes"]}
    assert classes[10]["title"] == "Water" and classes[10]["color_hint"] == "0080FF"
    assert classes[255]["nodata"] is True
    assert doc["summaries"]["proj:code"] == ["EPSG:3035"]
    assert doc["sci:publications"][0]["doi"] == "10.2909/b0bd43c6-1fa1-4d88-9c45-98b13a95d0b2"
    assert any(
        p["roles"] == ["producer", "processor"] and "processing:lineage" in p for p in doc["providers"]
    )


def test_collection_links_its_inspire_record() -> None:
    product, layer = get_layer("hrl-imperviousness-imd")
    doc = collection_for(
        product, layer, record_href="http://api/collections/hrl-imperviousness-imd/inspire.xml"
    )
    described = [link for link in doc["links"] if link["rel"] == "describedby"]
    assert described == [
        {
            "rel": "describedby",
            "href": "http://api/collections/hrl-imperviousness-imd/inspire.xml",
            "type": "application/vnd.iso.19139+xml",
            "title": "ISO 19139 / INSPIRE metadata record of hrl-imperviousness-imd",
        }
    ]


def test_continuous_layer_without_classes_has_no_classification_extension(schemas: ModuleType) -> None:
    product = next(p for p in load_products() if p.id == "emc-built")
    layer = product.layers[0]
    doc = collection_for(product, layer.model_copy(update={"classes": []}), record_href="x.xml")
    assert EXT["classification"] not in doc["stac_extensions"]
    assert schemas.validate_stac(doc) == []


def test_invalid_collection_is_caught_by_the_validator(schemas: ModuleType) -> None:
    product, layer = get_layer("clcplus-backbone-ras")
    doc = collection_for(product, layer, record_href="x.xml")
    doc["item_assets"]["data"]["raster:bands"][0]["data_type"] = "uint9"
    errors = schemas.validate_stac(doc)
    assert errors and all(e.startswith("https://stac-extensions.github.io/raster/v1.1.0/") for e in errors)
