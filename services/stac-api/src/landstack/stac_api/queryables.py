"""Queryables of the product collections, from the catalogue.

pgstac knows only the queryables registered in its table; a product collection also advertises
the properties its items carry by construction (the reference period, the grid's CRS and
resolution), so a client can build a filter without reading an item first.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from stac_fastapi.pgstac.extensions.filter import FiltersClient

from landstack.catalog import get_layer, layer_ids

_DATE_TIME = {"type": "string", "format": "date-time"}


def product_queryables(collection_id: str) -> dict[str, Any]:
    """JSON-schema properties every item of a product collection can be filtered on."""
    product, layer = get_layer(collection_id)
    props: dict[str, Any] = {
        "datetime": {**_DATE_TIME, "title": "Reference date of the layer"},
        "start_datetime": {
            **_DATE_TIME,
            "title": f"Start of the reference period ({product.reference_period})",
        },
        "end_datetime": {**_DATE_TIME, "title": "End of the reference period"},
        "proj:code": {"type": "string", "enum": [layer.grid.crs], "title": f"CRS of the {layer.grid.name}"},
        "gsd": {"type": "number", "enum": [layer.grid.resolution_m], "title": "Pixel size (m)"},
        "created": {**_DATE_TIME, "title": "When the item was produced"},
    }
    return props


class LandstackFilters(FiltersClient):
    """pgstac's queryables, with the catalogue's properties added for product collections."""

    async def get_queryables(
        self, request: Request, collection_id: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        queryables = await super().get_queryables(request, collection_id=collection_id, **kwargs)
        if collection_id in set(layer_ids()):
            extra = product_queryables(collection_id)
            queryables["properties"] = {**extra, **(queryables.get("properties") or {})}
            queryables["title"] = f"Queryables of {collection_id}"
        return queryables
