"""ISO 19139 / INSPIRE records of the catalogue's collections, served beside the collections."""

from __future__ import annotations

import functools

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from landstack.catalog import CatalogError, get_layer
from landstack.catalog.inspire import inspire_record
from landstack.catalog.stac import ISO19139_MEDIA_TYPE

router = APIRouter(tags=["INSPIRE metadata"])


@functools.lru_cache(maxsize=64)
def _record(collection_id: str) -> bytes:
    product, layer = get_layer(collection_id)
    return inspire_record(product, layer)


@router.get(
    "/collections/{collection_id}/inspire.xml",
    name="INSPIRE record",
    response_class=Response,
    responses={
        200: {"content": {ISO19139_MEDIA_TYPE: {}}, "description": "ISO 19139 record"},
        404: {"description": "the catalogue has no such collection"},
    },
)
async def get_inspire_record(collection_id: str) -> Response:
    """The ISO 19139 (INSPIRE) metadata record of a collection, generated from the catalogue spec."""
    try:
        body = _record(collection_id)
    except CatalogError as e:
        return JSONResponse(
            status_code=404,
            content={
                "code": "NotFoundError",
                "description": f"no INSPIRE record for collection {collection_id!r}: {e}",
            },
        )
    return Response(body, media_type=ISO19139_MEDIA_TYPE)
