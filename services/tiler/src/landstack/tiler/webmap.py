"""The web map: a page listing the product layers on a Leaflet map with legends and years.

`/map` is the page (static/map.html + map.js), `/map/layers.json` what it draws (the catalogue's
legend of every product collection that has items, its years and extent), `/map/pixel` the value
under a click, `/map/libs/...` the Leaflet distribution installed by npm (never vendored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from landstack.catalog import layer_ids
from landstack.storage import gdal_env
from landstack.tiler.catalog_db import collections_with_years, item_at
from landstack.tiler.errors import UnknownLayerError
from landstack.tiler.settings import TilerSettings
from landstack.tiler.statistics import pixel_value
from landstack.tiler.symbology import legend

router = APIRouter(tags=["Web map"])
STATIC = Path(__file__).parent / "static"
_FILES = {"map.js": "text/javascript", "map.css": "text/css"}


@router.get("/map", response_class=FileResponse, name="Web map")
def map_page() -> FileResponse:
    """The web map page."""
    return FileResponse(STATIC / "map.html", media_type="text/html")


@router.get("/map/static/{name}", name="Web map files")
def map_file(name: str) -> Response:
    if name not in _FILES:
        return JSONResponse(status_code=404, content={"detail": f"no file {name!r}"})
    return FileResponse(STATIC / name, media_type=_FILES[name])


@router.get("/map/libs/{path:path}", name="Web map libraries")
def map_lib(path: str, request: Request) -> Response:
    """Files of the npm packages (leaflet) from LANDSTACK_TILER_WEB_LIBS_DIR."""
    s: TilerSettings = request.app.state.settings
    root = s.web_libs_dir.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        hint = (
            ""
            if root.is_dir()
            else f"; {root} is missing: run `npm install --prefix .tools/web leaflet@1.9.4`"
        )
        return JSONResponse(status_code=404, content={"detail": f"no library file {path!r}{hint}"})
    return FileResponse(target)


@router.get("/map/layers.json", name="Web map layers")
def map_layers(request: Request) -> dict[str, Any]:
    """The product layers that have items: legend, reference years, extent, item-link base."""
    s: TilerSettings = request.app.state.settings
    present = collections_with_years(request.app.state.dbpool)
    layers = []
    for cid in layer_ids():
        if cid in present:
            layers.append({**legend(cid), **present[cid]})
    return {"api_url": s.api_url.rstrip("/"), "layers": layers}


@router.get("/map/pixel", name="Value under a point")
def map_pixel(
    request: Request,
    collection: Annotated[str, Query(description="product collection id")],
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    year: Annotated[int | None, Query(description="reference year")] = None,
) -> dict[str, Any]:
    """The class or value of a layer at a point, with the STAC API URL of the item holding it."""
    if collection not in set(layer_ids()):
        raise UnknownLayerError(f"{collection!r} is not a product layer; use one of `landstack catalog list`")
    s: TilerSettings = request.app.state.settings
    item = item_at(request.app.state.dbpool, collection, lon, lat, year)
    if item is None:
        return {"collection": collection, "value": None}
    with gdal_env(s.s3(), GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        found = pixel_value(item, collection, lon, lat) or {"value": None}
    api = s.api_url.rstrip("/")
    return {
        "collection": collection,
        **found,
        "item": item.get("id"),
        "item_url": f"{api}/collections/{quote(collection)}/items/{quote(str(item.get('id')))}",
    }
