"""The product specs: content of the four families and rejection of bad specs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from landstack.catalog import SpecError, get_layer, layer_ids, load_products
from landstack.catalog.errors import UnknownLayerError
from landstack.catalog.products import parse_product

CLCPLUS_CLASSES = {
    1: "Sealed",
    2: "Woody needle leaved trees",
    3: "Woody broadleaved deciduous trees",
    4: "Woody broadleaved evergreen trees",
    5: "Low-growing woody plants",
    6: "Permanent herbaceous",
    7: "Periodically herbaceous",
    8: "Lichens and mosses",
    9: "Non and sparsely vegetated",
    10: "Water",
    11: "Snow and ice",
    253: "Coastal seawater buffer",
    254: "Outside area",
    255: "No data",
}


def test_four_families_are_defined() -> None:
    assert {p.id for p in load_products()} == {"clcplus-backbone", "hrl-imperviousness", "emc-built", "cisc"}


def test_clcplus_ras_codes_match_the_atbd() -> None:
    _, ras = get_layer("clcplus-backbone-ras")
    assert {c.value: c.name for c in ras.classes} == CLCPLUS_CLASSES
    assert (ras.dtype, ras.nodata, ras.grid.crs, ras.grid.resolution, ras.grid.tile_pixels) == (
        "uint8",
        255,
        "EPSG:3035",
        10,
        10_000,
    )


@pytest.mark.parametrize(
    ("layer_id", "dtype", "nodata", "value_range"),
    [
        ("clcplus-backbone-rascl", "uint8", 254, (0, 100)),
        ("clcplus-backbone-rasdl", "uint16", 65535, (0, 200)),
        ("hrl-imperviousness-imd", "uint8", 255, (0, 100)),
        ("emc-built-s-10m", "uint8", 255, (0, 100)),
        ("emc-built-s-100m", "uint16", 65535, (0, 10_000)),
        ("emc-built-nres-1km", "uint32", 4294967295, (0, 1_000_000)),
        ("emc-built-greenness-30ss", "uint8", 255, (0, 100)),
    ],
)
def test_continuous_layers(layer_id: str, dtype: str, nodata: int, value_range: tuple[int, int]) -> None:
    _, layer = get_layer(layer_id)
    assert (layer.dtype, layer.nodata, layer.value_range) == (dtype, nodata, value_range)


def test_raspl_and_cisc_codes() -> None:
    _, raspl = get_layer("clcplus-backbone-raspl")
    assert [c.value for c in raspl.classes] == [0, 1, 254]
    _, cisc = get_layer("cisc-classes")
    assert {c.value: c.name for c in cisc.classes if not c.nodata} == {
        0: "Bare land or other",
        1: "Impervious surface",
        2: "Vegetation",
        3: "Water",
    }
    assert cisc.grid.resolution == 30
    assert get_layer("cisc-valid-mask")[1].kind == "mask"


def test_emc_built_grids() -> None:
    crs_res = {
        (get_layer(i)[1].grid.crs, get_layer(i)[1].grid.resolution)
        for i in layer_ids()
        if "emc-built-s-" in i
    }
    assert crs_res == {
        ("ESRI:54009", 10),
        ("ESRI:54009", 100),
        ("ESRI:54009", 1000),
        ("EPSG:4326", 3),
        ("EPSG:4326", 30),
    }


def test_hrl_has_density_mask_and_change() -> None:
    product = next(p for p in load_products() if p.id == "hrl-imperviousness")
    assert [layer.code for layer in product.layers] == ["IMD", "SLM", "IMCC"]


def test_every_product_has_metadata_fields() -> None:
    for p in load_products():
        assert {c.role for c in p.contacts} >= {"custodian", "publisher", "pointOfContact"}
        assert any(k.thesaurus == "GEMET - INSPIRE themes, version 1.0" for k in p.keywords)
        assert p.lineage and p.use_constraints and p.licence and p.topic_categories
        assert p.citation.identifier and p.update_frequency


def test_unknown_layer_names_known_ones() -> None:
    with pytest.raises(UnknownLayerError, match="clcplus-backbone-ras"):
        get_layer("nope")


def _raw_ras() -> dict[str, Any]:
    from importlib import resources

    import yaml

    text = resources.files("landstack.catalog.specs").joinpath("clcplus-backbone.yaml").read_text()
    return copy.deepcopy(yaml.safe_load(text))


def test_duplicate_code_is_rejected_naming_product_layer_field() -> None:
    raw = _raw_ras()
    raw["layers"][0]["classes"][3]["value"] = 2
    with pytest.raises(SpecError) as e:
        parse_product(raw)
    assert (e.value.product, e.value.layer, e.value.field) == ("clcplus-backbone", "RAS", "classes[3].value")
    assert "duplicate code 2" in str(e.value)


def test_class_outside_dtype_range_is_rejected() -> None:
    raw = _raw_ras()
    raw["layers"][0]["classes"][0]["value"] = 300
    with pytest.raises(SpecError) as e:
        parse_product(raw)
    assert (e.value.layer, e.value.field) == ("RAS", "classes[0].value")
    assert "outside the range of uint8" in str(e.value)


def test_missing_nodata_is_rejected() -> None:
    raw = _raw_ras()
    del raw["layers"][2]["nodata"]
    with pytest.raises(SpecError) as e:
        parse_product(raw)
    assert (e.value.product, e.value.layer, e.value.field) == ("clcplus-backbone", "RASDL", "nodata")
    assert "clcplus-backbone" in str(e.value) and "RASDL" in str(e.value) and "nodata" in str(e.value)


def test_nodata_outside_dtype_is_rejected() -> None:
    raw = _raw_ras()
    raw["layers"][1]["nodata"] = 65535
    with pytest.raises(SpecError, match=r"layer 'RASCL', field 'nodata'"):
        parse_product(raw)


def test_nodata_inside_value_range_is_rejected() -> None:
    raw = _raw_ras()
    raw["layers"][1]["nodata"] = 50
    raw["layers"][1]["classes"][0]["value"] = 50
    with pytest.raises(SpecError, match="lies inside value_range"):
        parse_product(raw)


def test_missing_contact_role_is_rejected() -> None:
    raw = _raw_ras()
    raw["contacts"] = [c for c in raw["contacts"] if c["role"] != "publisher"]
    with pytest.raises(SpecError, match=r"field 'contacts'.*publisher"):
        parse_product(raw)
