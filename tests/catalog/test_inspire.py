"""ISO 19139 / INSPIRE records validate against the 2007 XSDs and carry what CLMS records carry."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from lxml import etree

from landstack.catalog import get_layer, layer_ids
from landstack.catalog.inspire import NS, inspire_record, record_identifier


@pytest.mark.parametrize("layer_id", layer_ids())
def test_record_validates(layer_id: str, tmp_path: Path, schemas: ModuleType) -> None:
    product, layer = get_layer(layer_id)
    path = tmp_path / f"{layer_id}.xml"
    path.write_bytes(inspire_record(product, layer))
    assert schemas.validate_iso19139(path) == []


def _xpath(doc: etree._Element, path: str) -> list[str]:
    return [str(x).strip() for x in doc.xpath(path, namespaces=NS)]


def test_record_content_of_ras() -> None:
    product, layer = get_layer("clcplus-backbone-ras")
    doc = etree.fromstring(inspire_record(product, layer))
    ident = "gmd:identificationInfo/gmd:MD_DataIdentification"
    cit = f"{ident}/gmd:citation/gmd:CI_Citation"
    assert _xpath(doc, "gmd:fileIdentifier/gco:CharacterString/text()") == [record_identifier(layer)]
    assert _xpath(doc, f"{cit}/gmd:title/gco:CharacterString/text()") == [layer.title]
    assert _xpath(doc, f"{cit}/gmd:date/gmd:CI_Date/gmd:dateType/gmd:CI_DateTypeCode/@codeListValue") == [
        "creation",
        "publication",
    ]
    assert _xpath(doc, f"{cit}/gmd:edition/gco:CharacterString/text()") == ["01.00"]
    assert "landstack_r_3035_10_m_clcplus-backbone_p_YYYY_v01_r00" in _xpath(
        doc, f"{cit}/gmd:identifier//gmd:code/gco:CharacterString/text()"
    )
    roles = _xpath(
        doc, f"{ident}/gmd:pointOfContact/gmd:CI_ResponsibleParty/gmd:role/gmd:CI_RoleCode/@codeListValue"
    )
    assert set(roles) == {"custodian", "publisher", "pointOfContact"}
    assert _xpath(doc, f"{ident}/gmd:topicCategory/gmd:MD_TopicCategoryCode/text()") == [
        "environment",
        "imageryBaseMapsEarthCover",
    ]
    assert _xpath(doc, f"{ident}/gmd:spatialResolution//gco:Distance/text()") == ["10"]
    assert _xpath(doc, "gmd:referenceSystemInfo//gmd:code/gmx:Anchor/text()") == ["EPSG:3035"]
    assert _xpath(doc, f"{ident}/gmd:descriptiveKeywords//gmd:keyword/gmx:Anchor/@xlink:href") == [
        "http://inspire.ec.europa.eu/theme/lc",
        "http://inspire.ec.europa.eu/metadata-codelist/SpatialScope/european",
    ]
    supplemental = _xpath(doc, f"{ident}/gmd:supplementalInformation/gco:CharacterString/text()")[0]
    assert "1: Sealed" in supplemental and "253: Coastal seawater buffer" in supplemental
    assert _xpath(
        doc, f"{ident}/gmd:resourceMaintenance//gmd:MD_MaintenanceFrequencyCode/@codeListValue"
    ) == ["asNeeded"]
    assert "1089/2010" in _xpath(doc, "gmd:dataQualityInfo//gmd:specification//gmx:Anchor/text()")[0]
    assert "TempCNN" in _xpath(doc, "gmd:dataQualityInfo//gmd:lineage//gco:CharacterString/text()")[0]
    assert _xpath(doc, "gmd:distributionInfo//gmd:distributionFormat//gmx:Anchor/text()") == ["GeoTIFF"]
    assert _xpath(doc, f"{ident}//gml:beginPosition/text()") == ["2017-10-01"]
    assert _xpath(doc, "gmd:metadataStandardName/gco:CharacterString/text()") == ["ISO 19115/19139"]
    # the reference product's DOI is cited as a cross-reference
    assert "https://doi.org/10.2909/b0bd43c6-1fa1-4d88-9c45-98b13a95d0b2" in _xpath(
        doc, f"{ident}/gmd:aggregationInfo//gmd:code/gmx:Anchor/text()"
    )


def test_minted_doi_is_an_identifier(tmp_path: Path, schemas: ModuleType) -> None:
    product, layer = get_layer("hrl-imperviousness-imd")
    citation = product.citation.model_copy(update={"doi": "10.5281/zenodo.1234567"})
    product = product.model_copy(update={"citation": citation})
    xml = inspire_record(product, layer)
    doc = etree.fromstring(xml)
    assert "https://doi.org/10.5281/zenodo.1234567" in _xpath(
        doc, "gmd:identificationInfo//gmd:citation/gmd:CI_Citation/gmd:identifier//gmx:Anchor/text()"
    )
    path = tmp_path / "doi.xml"
    path.write_bytes(xml)
    assert schemas.validate_iso19139(path) == []


def test_broken_record_fails_validation(tmp_path: Path, schemas: ModuleType) -> None:
    product, layer = get_layer("cisc-classes")
    doc = etree.fromstring(inspire_record(product, layer))
    # dateStamp before contact violates the gmd:MD_Metadata sequence
    stamp = doc.find("gmd:dateStamp", NS)
    doc.remove(stamp)
    doc.insert(0, stamp)
    path = tmp_path / "broken.xml"
    path.write_bytes(etree.tostring(doc))
    assert schemas.validate_iso19139(path) != []
