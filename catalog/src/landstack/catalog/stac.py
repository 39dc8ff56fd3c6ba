"""STAC collections (one per product layer) built from the specs; `items` builds their items."""

from __future__ import annotations

import datetime as dt
from typing import Any

from landstack.catalog.spec import LayerSpec, ProductSpec

STAC_VERSION = "1.1.0"
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
ISO19139_MEDIA_TYPE = "application/vnd.iso.19139+xml"

EXT = {
    "classification": "https://stac-extensions.github.io/classification/v1.1.0/schema.json",
    "raster": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "projection": "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "file": "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "item-assets": "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
    "processing": "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "scientific": "https://stac-extensions.github.io/scientific/v1.0.0/schema.json",
    "version": "https://stac-extensions.github.io/version/v1.2.0/schema.json",
    "eo": "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "sat": "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "view": "https://stac-extensions.github.io/view/v1.0.0/schema.json",
}
PNG_MEDIA_TYPE = "image/png"
XML_MEDIA_TYPE = "application/xml"

SOFTWARE = {"landstack": "0.1.0"}


def _iso(d: dt.date | None) -> str | None:
    return None if d is None else f"{d.isoformat()}T00:00:00Z"


def classes_of(layer: LayerSpec) -> list[dict[str, Any]]:
    """classification:classes objects for a layer's codes."""
    out = []
    for c in layer.classes:
        obj: dict[str, Any] = {
            "value": c.value,
            "name": c.slug,
            "title": c.name,
            "description": c.description or c.name,
            "color_hint": c.color.lstrip("#"),
        }
        if c.nodata:
            obj["nodata"] = True
        out.append(obj)
    return out


def raster_band(layer: LayerSpec) -> dict[str, Any]:
    """The raster:bands entry of a layer's data asset."""
    band: dict[str, Any] = {
        "data_type": layer.dtype,
        "nodata": layer.nodata,
        "sampling": "area",
        "spatial_resolution": layer.grid.resolution_m,
    }
    if layer.unit:
        band["unit"] = layer.unit
    if layer.scale != 1.0 or layer.offset != 0.0:
        band["scale"], band["offset"] = layer.scale, layer.offset
    if layer.classes:
        band["classification:classes"] = classes_of(layer)
    return band


def data_asset(layer: LayerSpec) -> dict[str, Any]:
    """The item-asset definition of a layer's COG."""
    asset: dict[str, Any] = {
        "title": layer.title,
        "description": layer.description,
        "type": COG_MEDIA_TYPE,
        "roles": ["data"],
        "proj:code": layer.grid.crs,
        "raster:bands": [raster_band(layer)],
        "file:byte_order": "little-endian",
    }
    if layer.classes:
        asset["classification:classes"] = classes_of(layer)
        asset["file:values"] = [{"values": [c.value], "summary": c.name} for c in layer.classes]
    return asset


def item_assets_for(layer: LayerSpec) -> dict[str, dict[str, Any]]:
    """The assets every item of a layer's collection carries: the COG, its attribute table and a
    quicklook (the collection's `item_assets`; the item builder copies them)."""
    return {
        layer.asset_key: data_asset(layer),
        "attribute_table": {
            "title": "Raster attribute table (GDAL PAM .aux.xml)",
            "type": XML_MEDIA_TYPE,
            "roles": ["metadata"],
        },
        "thumbnail": {
            "title": f"Quicklook of {layer.title} with legend",
            "type": PNG_MEDIA_TYPE,
            "roles": ["thumbnail", "overview"],
        },
    }


def collection_for(product: ProductSpec, layer: LayerSpec, record_href: str) -> dict[str, Any]:
    """A STAC Collection for one product layer; `record_href` is where its ISO 19139 record lives."""
    exts = [
        EXT[k] for k in ("raster", "projection", "file", "item-assets", "processing", "scientific", "version")
    ]
    if layer.classes:
        exts.insert(0, EXT["classification"])
    custodian = next(c for c in product.contacts if c.role == "custodian")
    providers: list[dict[str, Any]] = [
        {
            "name": custodian.organisation,
            "roles": ["licensor", "host"],
            **({"url": custodian.url} if custodian.url else {}),
        },
        {
            "name": "landstack",
            "description": "Production system that derived this layer from Sentinel-2 L2A time series",
            "roles": ["producer", "processor"],
            "processing:level": product.processing_level,
            "processing:lineage": product.lineage,
            "processing:software": SOFTWARE,
        },
    ]
    links: list[dict[str, Any]] = [
        {
            "rel": "describedby",
            "href": record_href,
            "type": ISO19139_MEDIA_TYPE,
            "title": f"ISO 19139 / INSPIRE metadata record of {layer.id}",
        },
    ]
    if product.licence_url:
        links.append({"rel": "license", "href": product.licence_url, "title": f"Licence ({product.licence})"})
    ref = product.reference_product
    if ref and ref.url:
        links.append({"rel": "related", "href": ref.url, "type": "text/html", "title": ref.title})
    if product.citation.doi:
        links.append({"rel": "cite-as", "href": f"https://doi.org/{product.citation.doi}"})
    keywords = [k for ks in product.keywords for k in ks.keywords]
    doc: dict[str, Any] = {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": exts,
        "id": layer.id,
        "title": layer.title,
        "description": f"{layer.description}\n\n{product.abstract}",
        "keywords": list(dict.fromkeys([*keywords, product.family, layer.code])),
        "license": product.licence,
        "providers": providers,
        "extent": {
            "spatial": {"bbox": [list(product.bbox)]},
            "temporal": {"interval": [[_iso(product.temporal_start), _iso(product.temporal_end)]]},
        },
        "summaries": {
            "proj:code": [layer.grid.crs],
            "gsd": [layer.grid.resolution_m],
            "processing:level": [product.processing_level],
        },
        "item_assets": item_assets_for(layer),
        "sci:citation": citation_text(product, layer),
        "version": product.version,
        "deprecated": False,
        "links": links,
        "landstack:product": product.id,
        "landstack:layer": layer.code,
        "landstack:grid": layer.grid.model_dump(mode="json"),
        "landstack:reference_period": product.reference_period,
    }
    if product.citation.doi:
        doc["sci:doi"] = product.citation.doi
    if ref and ref.doi:
        doc["sci:publications"] = [{"doi": ref.doi, "citation": ref.citation or ref.title}]
    return doc


def citation_text(product: ProductSpec, layer: LayerSpec, year: int | None = None) -> str:
    """The proposed citation of a layer (optionally of one reference year)."""
    ident = product.citation.identifier.replace("{year}", str(year) if year else "YYYY")
    text = f"{layer.title}, {product.family}, edition {product.citation.edition} ({ident})"
    if product.citation.doi:
        text += f", https://doi.org/{product.citation.doi}"
    return text
