"""ISO 19139 (2007) / INSPIRE metadata records, one per product layer (STAC collection).

The record carries what CLMS records carry: citation with dates, edition, identifiers (and the DOI
once minted), contacts with roles, grid spatial representation and resolution, topic categories,
temporal and geographic extent, maintenance frequency, GEMET / INSPIRE-theme and spatial-scope
keywords, access and use constraints, language and encoding, the pixel-code description,
distribution format and online resources, a conformity report against Commission Regulation (EU)
No 1089/2010, lineage, reference system and the metadata's own identifier, date and standard.
"""

from __future__ import annotations

import datetime as dt
import uuid

from lxml import etree

from landstack.catalog.spec import Keywords, LayerSpec, ProductSpec
from landstack.catalog.stac import citation_text

NS = {
    "gmd": "http://www.isotc211.org/2005/gmd",
    "gco": "http://www.isotc211.org/2005/gco",
    "gmx": "http://www.isotc211.org/2005/gmx",
    "gml": "http://www.opengis.net/gml/3.2",
    "xlink": "http://www.w3.org/1999/xlink",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
_CODELISTS = "http://standards.iso.org/iso/19139/resources/gmxCodelists.xml"
_SCHEMA_LOCATION = (
    "http://www.isotc211.org/2005/gmd http://schemas.opengis.net/csw/2.0.2/profiles/apiso/1.0.0/apiso.xsd"
)
_REG_1089 = (
    "Commission Regulation (EU) No 1089/2010 of 23 November 2010 implementing Directive 2007/2/EC of the "
    "European Parliament and of the Council as regards interoperability of spatial data sets and services"
)
_NAMESPACE_UUID = uuid.UUID("6f1c3a52-7d0e-4b7a-9a59-2b6f4c0d8e11")


def _q(tag: str) -> str:
    prefix, local = tag.split(":")
    return f"{{{NS[prefix]}}}{local}"


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    e = etree.SubElement(parent, _q(tag))
    for k, v in attrs.items():
        e.set(_q(k.replace("__", ":")) if "__" in k else k, v)
    if text is not None:
        e.text = text
    return e


def _chain(parent: etree._Element, path: str, text: str | None = None) -> etree._Element:
    """Create a chain of nested elements, e.g. 'gmd:title/gco:CharacterString'."""
    node = parent
    for tag in path.split("/"):
        node = _el(node, tag)
    node.text = text
    return node


def _str(parent: etree._Element, tag: str, text: str) -> etree._Element:
    wrapper = _el(parent, tag)
    _el(wrapper, "gco:CharacterString", text)
    return wrapper


def _anchor(parent: etree._Element, tag: str, text: str, href: str | None) -> None:
    wrapper = _el(parent, tag)
    if href:
        _el(wrapper, "gmx:Anchor", text, xlink__href=href)
    else:
        _el(wrapper, "gco:CharacterString", text)


def _code(parent: etree._Element, tag: str, codelist: str, value: str) -> None:
    wrapper = _el(parent, tag)
    _el(wrapper, f"gmd:{codelist}", value, codeList=f"{_CODELISTS}#{codelist}", codeListValue=value)


def _date(parent: etree._Element, when: dt.date, kind: str) -> None:
    ci = _el(_el(parent, "gmd:date"), "gmd:CI_Date")
    _el(_el(ci, "gmd:date"), "gco:Date", when.isoformat())
    _code(ci, "gmd:dateType", "CI_DateTypeCode", kind)


def _citation(parent: etree._Element, title: str, dates: list[tuple[dt.date, str]]) -> etree._Element:
    ci = _el(parent, "gmd:CI_Citation")
    _str(ci, "gmd:title", title)
    for when, kind in dates:
        _date(ci, when, kind)
    return ci


def _language(parent: etree._Element, tag: str, code: str) -> None:
    _el(
        _el(parent, tag),
        "gmd:LanguageCode",
        code,
        codeList="http://www.loc.gov/standards/iso639-2/",
        codeListValue=code,
    )


def _party(
    parent: etree._Element,
    tag: str,
    organisation: str,
    role: str,
    email: str | None,
    url: str | None,
    individual: str | None = None,
) -> None:
    rp = _el(_el(parent, tag), "gmd:CI_ResponsibleParty")
    if individual:
        _str(rp, "gmd:individualName", individual)
    _str(rp, "gmd:organisationName", organisation)
    info = _el(_el(rp, "gmd:contactInfo"), "gmd:CI_Contact")
    if email:
        _str(_el(_el(info, "gmd:address"), "gmd:CI_Address"), "gmd:electronicMailAddress", email)
    if url:
        res = _el(_el(info, "gmd:onlineResource"), "gmd:CI_OnlineResource")
        _el(_el(res, "gmd:linkage"), "gmd:URL", url)
    _code(rp, "gmd:role", "CI_RoleCode", role)


def _keywords(parent: etree._Element, ks: Keywords) -> None:
    md = _el(_el(parent, "gmd:descriptiveKeywords"), "gmd:MD_Keywords")
    for k in ks.keywords:
        _anchor(md, "gmd:keyword", k, ks.anchors.get(k))
    if ks.thesaurus:
        th = _el(_el(md, "gmd:thesaurusName"), "gmd:CI_Citation")
        _anchor(th, "gmd:title", ks.thesaurus, ks.thesaurus_url)
        if ks.thesaurus_date:
            _date(th, ks.thesaurus_date, "publication")


def record_identifier(layer: LayerSpec) -> str:
    """Stable metadata identifier (UUID derived from the collection id)."""
    return str(uuid.uuid5(_NAMESPACE_UUID, layer.id))


def pixel_codes(layer: LayerSpec) -> str:
    """The 'Additional information' pixel-code text of CLMS records."""
    parts = []
    if layer.value_range is not None:
        lo, hi = layer.value_range
        unit = f" {layer.unit}" if layer.unit else ""
        parts.append(f"{lo:g}-{hi:g}: {layer.title} values{unit}")
    parts += [f"{c.value}: {c.name}" for c in layer.classes]
    return "Pixel codes: " + "; ".join(parts)


def inspire_record(
    product: ProductSpec, layer: LayerSpec, stamp: dt.date | None = None, download_url: str | None = None
) -> bytes:
    """The ISO 19139 gmd:MD_Metadata record of one product layer, UTF-8 encoded."""
    stamp = stamp or product.citation.revision or product.citation.publication
    root = etree.Element(_q("gmd:MD_Metadata"), nsmap=NS)
    root.set(_q("xsi:schemaLocation"), _SCHEMA_LOCATION)
    _str(root, "gmd:fileIdentifier", record_identifier(layer))
    _language(root, "gmd:language", product.language)
    _code(root, "gmd:characterSet", "MD_CharacterSetCode", "utf8")
    _code(root, "gmd:hierarchyLevel", "MD_ScopeCode", "dataset")
    metadata_poc = next(c for c in product.contacts if c.role == "pointOfContact")
    _party(
        root, "gmd:contact", metadata_poc.organisation, "pointOfContact", metadata_poc.email, metadata_poc.url
    )
    _el(_el(root, "gmd:dateStamp"), "gco:Date", stamp.isoformat())
    _str(root, "gmd:metadataStandardName", "ISO 19115/19139")
    _str(root, "gmd:metadataStandardVersion", "1.0")
    _grid_representation(root, layer)
    rs = _el(
        _el(_el(root, "gmd:referenceSystemInfo"), "gmd:MD_ReferenceSystem"), "gmd:referenceSystemIdentifier"
    )
    rsid = _el(rs, "gmd:RS_Identifier")
    authority, code = layer.grid.crs.split(":")
    href = f"http://www.opengis.net/def/crs/{authority}/0/{code}"
    _anchor(rsid, "gmd:code", layer.grid.crs, href)
    _str(rsid, "gmd:codeSpace", authority)
    _identification(root, product, layer)
    _distribution(root, layer, download_url)
    _quality(root, product, layer)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _grid_representation(root: etree._Element, layer: LayerSpec) -> None:
    grid = _el(_el(root, "gmd:spatialRepresentationInfo"), "gmd:MD_GridSpatialRepresentation")
    _el(_el(grid, "gmd:numberOfDimensions"), "gco:Integer", "2")
    size = layer.grid.tile_pixels
    unit = "m" if layer.grid.resolution_unit == "m" else "arcsec"
    for name in ("row", "column"):
        dim = _el(_el(grid, "gmd:axisDimensionProperties"), "gmd:MD_Dimension")
        _code(dim, "gmd:dimensionName", "MD_DimensionNameTypeCode", name)
        if size is None:
            _el(dim, "gmd:dimensionSize", gco__nilReason="inapplicable")
        else:
            _el(_el(dim, "gmd:dimensionSize"), "gco:Integer", str(size))
        _el(_el(dim, "gmd:resolution"), "gco:Measure", f"{layer.grid.resolution:g}", uom=unit)
    _code(grid, "gmd:cellGeometry", "MD_CellGeometryCode", "area")
    _el(_el(grid, "gmd:transformationParameterAvailability"), "gco:Boolean", "false")


def _identification(root: etree._Element, product: ProductSpec, layer: LayerSpec) -> None:
    ident = _el(_el(root, "gmd:identificationInfo"), "gmd:MD_DataIdentification")
    cit_dates = [(product.citation.creation, "creation"), (product.citation.publication, "publication")]
    if product.citation.revision:
        cit_dates.append((product.citation.revision, "revision"))
    ci = _citation(_el(ident, "gmd:citation"), layer.title, cit_dates)
    _str(ci, "gmd:edition", product.citation.edition)
    ids = [(product.citation.identifier.replace("{year}", "YYYY"), None), (layer.id, "landstack")]
    if product.citation.doi:
        ids.append((f"https://doi.org/{product.citation.doi}", "doi.org"))
    for code, space in ids:
        rid = _el(_el(ci, "gmd:identifier"), "gmd:RS_Identifier" if space else "gmd:MD_Identifier")
        if space == "doi.org":
            _anchor(rid, "gmd:code", code, code)
        else:
            _str(rid, "gmd:code", code)
        if space:
            _str(rid, "gmd:codeSpace", space)
    _str(ident, "gmd:abstract", f"{layer.description} {product.abstract}")
    _code(ident, "gmd:status", "MD_ProgressCode", "onGoing")
    for c in product.contacts:
        _party(ident, "gmd:pointOfContact", c.organisation, c.role, c.email, c.url, c.individual)
    maint = _el(_el(ident, "gmd:resourceMaintenance"), "gmd:MD_MaintenanceInformation")
    _code(maint, "gmd:maintenanceAndUpdateFrequency", "MD_MaintenanceFrequencyCode", product.update_frequency)
    fmt = _el(_el(ident, "gmd:resourceFormat"), "gmd:MD_Format")
    _str(fmt, "gmd:name", "GeoTIFF (Cloud Optimized GeoTIFF)")
    _str(fmt, "gmd:version", "1.1")
    for ks in product.keywords:
        _keywords(ident, ks)
    _constraints(ident, product)
    ref = product.reference_product
    if ref is not None:
        agg = _el(_el(ident, "gmd:aggregationInfo"), "gmd:MD_AggregateInformation")
        rc = _el(_el(agg, "gmd:aggregateDataSetName"), "gmd:CI_Citation")
        _str(rc, "gmd:title", ref.title)
        _el(rc, "gmd:date", gco__nilReason="unknown")
        if ref.doi:
            rid = _el(_el(rc, "gmd:identifier"), "gmd:RS_Identifier")
            _anchor(rid, "gmd:code", f"https://doi.org/{ref.doi}", f"https://doi.org/{ref.doi}")
            _str(rid, "gmd:codeSpace", "doi.org")
        _code(agg, "gmd:associationType", "DS_AssociationTypeCode", "crossReference")
    _code(ident, "gmd:spatialRepresentationType", "MD_SpatialRepresentationTypeCode", "grid")
    res = _el(_el(ident, "gmd:spatialResolution"), "gmd:MD_Resolution")
    _el(_el(res, "gmd:distance"), "gco:Distance", f"{layer.grid.resolution_m:g}", uom="m")
    _language(ident, "gmd:language", product.language)
    _code(ident, "gmd:characterSet", "MD_CharacterSetCode", "utf8")
    for topic in product.topic_categories:
        _el(_el(ident, "gmd:topicCategory"), "gmd:MD_TopicCategoryCode", topic)
    _extent(ident, product, layer)
    _str(ident, "gmd:supplementalInformation", f"{pixel_codes(layer)}. {citation_text(product, layer)}")


def _constraints(ident: etree._Element, product: ProductSpec) -> None:
    access = _el(_el(ident, "gmd:resourceConstraints"), "gmd:MD_LegalConstraints")
    _code(access, "gmd:accessConstraints", "MD_RestrictionCode", "otherRestrictions")
    _anchor(
        access,
        "gmd:otherConstraints",
        product.access_constraints,
        "http://inspire.ec.europa.eu/metadata-codelist/LimitationsOnPublicAccess/noLimitations"
        if product.access_constraints.startswith("no limitations")
        else None,
    )
    use = _el(_el(ident, "gmd:resourceConstraints"), "gmd:MD_LegalConstraints")
    _code(use, "gmd:useConstraints", "MD_RestrictionCode", "otherRestrictions")
    _str(use, "gmd:otherConstraints", product.use_constraints)
    if product.licence_url:
        _anchor(use, "gmd:otherConstraints", f"Licence: {product.licence}", product.licence_url)


def _extent(ident: etree._Element, product: ProductSpec, layer: LayerSpec) -> None:
    ext = _el(_el(ident, "gmd:extent"), "gmd:EX_Extent")
    bbox = _el(_el(ext, "gmd:geographicElement"), "gmd:EX_GeographicBoundingBox")
    w, s, e, n = product.bbox
    for tag, v in (
        ("westBoundLongitude", w),
        ("eastBoundLongitude", e),
        ("southBoundLatitude", s),
        ("northBoundLatitude", n),
    ):
        _el(_el(bbox, f"gmd:{tag}"), "gco:Decimal", f"{v:g}")
    temporal = _el(_el(_el(ext, "gmd:temporalElement"), "gmd:EX_TemporalExtent"), "gmd:extent")
    period = _el(temporal, "gml:TimePeriod", gml__id=f"tp-{layer.id}")
    _el(period, "gml:beginPosition", product.temporal_start.isoformat())
    if product.temporal_end:
        _el(period, "gml:endPosition", product.temporal_end.isoformat())
    else:
        _el(period, "gml:endPosition", indeterminatePosition="now")


def _distribution(root: etree._Element, layer: LayerSpec, download_url: str | None) -> None:
    dist = _el(_el(root, "gmd:distributionInfo"), "gmd:MD_Distribution")
    fmt = _el(_el(dist, "gmd:distributionFormat"), "gmd:MD_Format")
    _anchor(fmt, "gmd:name", "GeoTIFF", "http://inspire.ec.europa.eu/media-types/image/tiff")
    _str(fmt, "gmd:version", "Cloud Optimized GeoTIFF 1.0")
    opts = _el(_el(dist, "gmd:transferOptions"), "gmd:MD_DigitalTransferOptions")
    links = [
        (
            download_url or f"collections/{layer.id}",
            "OGC:API-STAC",
            "STAC API collection (items and COG assets)",
            "download",
        ),
        (
            f"collections/{layer.id}/items",
            "OGC:API-Features-items",
            "STAC items of the layer, one per tile and year",
            "information",
        ),
    ]
    for url, protocol, name, function in links:
        res = _el(_el(opts, "gmd:onLine"), "gmd:CI_OnlineResource")
        _el(_el(res, "gmd:linkage"), "gmd:URL", url)
        _str(res, "gmd:protocol", protocol)
        _str(res, "gmd:name", name)
        _code(res, "gmd:function", "CI_OnLineFunctionCode", function)


def _quality(root: etree._Element, product: ProductSpec, layer: LayerSpec) -> None:
    dq = _el(_el(root, "gmd:dataQualityInfo"), "gmd:DQ_DataQuality")
    scope = _el(_el(dq, "gmd:scope"), "gmd:DQ_Scope")
    _code(scope, "gmd:level", "MD_ScopeCode", "dataset")
    consistency = _el(_el(dq, "gmd:report"), "gmd:DQ_DomainConsistency")
    result = _el(_el(consistency, "gmd:result"), "gmd:DQ_ConformanceResult")
    spec = _el(result, "gmd:specification")
    ci = _el(spec, "gmd:CI_Citation")
    _anchor(ci, "gmd:title", _REG_1089, "http://data.europa.eu/eli/reg/2010/1089")
    _date(ci, dt.date(2010, 12, 8), "publication")
    _str(result, "gmd:explanation", "See the referenced specification")
    # Conformity is not evaluated by the production system itself: "not evaluated" per INSPIRE TG.
    _el(result, "gmd:pass", gco__nilReason="unknown")
    lineage = _el(_el(dq, "gmd:lineage"), "gmd:LI_Lineage")
    _str(lineage, "gmd:statement", product.lineage)
