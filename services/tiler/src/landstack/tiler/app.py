"""The tiler: titiler-pgstac over the landstack pgstac database, drawn with the catalogue's colours.

Routes (all read-only):
- `/collections/{id}/items/{item}/tiles/WebMercatorQuad/{z}/{x}/{y}.png?assets=data`, `.../preview`,
  `.../WMTSCapabilities.xml` — one product item;
- `/collections/{id}/tiles/...`, `/collections/{id}/WMTSCapabilities.xml` — the
  mosaic of a collection (`datetime=` picks a reference year);
- `/searches/register`, `/searches/{search_id}/tiles/...` — the mosaic of any STAC search;
- `POST /collections/{id}/aoi-statistics` — area per class or mean/sum inside an AOI per year;
- `/map` — the web map (see webmap.py);
- `/_mgmt/ping` (the process answers) and `/_mgmt/health` (the database answers) — the probes.
A product layer is drawn with its own colour map unless the request names another one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import jinja2
import psycopg
from fastapi import Body, Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware
from starlette.templating import Jinja2Templates
from titiler.core.dependencies import ColorMapParams
from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers
from titiler.core.factory import MultiBaseTilerFactory, TMSFactory
from titiler.core.middleware import CacheControlMiddleware
from titiler.extensions import wmtsExtension
from titiler.mosaic.errors import MOSAIC_STATUS_CODES
from titiler.mosaic.extensions.wmts import wmtsExtension as wmtsExtensionMosaic
from titiler.pgstac.db import close_db_connection, connect_to_db
from titiler.pgstac.dependencies import CollectionIdParams, ItemIdParams, SearchIdParams
from titiler.pgstac.errors import PGSTAC_STATUS_CODES
from titiler.pgstac.extensions import searchInfoExtension
from titiler.pgstac.factory import MosaicTilerFactory, add_search_register_route
from titiler.pgstac.reader import PgSTACReader
from titiler.pgstac.settings import PostgresSettings

from landstack.catalog import layer_ids
from landstack.storage import gdal_env
from landstack.tiler import webmap
from landstack.tiler.catalog_db import items_for
from landstack.tiler.errors import AoiError, ReadError, TilerError, UnknownLayerError
from landstack.tiler.settings import TilerSettings
from landstack.tiler.statistics import aoi_area_km2, aoi_statistics
from landstack.tiler.symbology import layer_colormap

_PRODUCTS = frozenset(layer_ids())

_templates = Jinja2Templates(
    env=jinja2.Environment(
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        loader=jinja2.ChoiceLoader(
            [
                jinja2.PackageLoader("titiler.pgstac", "templates"),
                jinja2.PackageLoader("titiler.core", "templates"),
            ]
        ),
    )
)


def product_colormap(request: Request, requested: Annotated[Any, Depends(ColorMapParams)] = None) -> Any:
    """The colour map a request names, else the product's own (by path or `collection=` parameter)."""
    if requested is not None:
        return requested
    cid = request.path_params.get("collection_id") or request.query_params.get("collection")
    return layer_colormap(cid) if cid in _PRODUCTS else None


def _aoi_geometry(body: dict[str, Any]) -> dict[str, Any]:
    aoi = body.get("aoi") or body.get("geometry")
    if isinstance(aoi, dict) and aoi.get("type") == "Feature":
        aoi = aoi.get("geometry")
    if isinstance(aoi, dict) and aoi.get("type") == "FeatureCollection":
        feats = aoi.get("features") or []
        if len(feats) != 1:
            raise AoiError(f"the AOI FeatureCollection has {len(feats)} features; send exactly one polygon")
        aoi = feats[0].get("geometry")
    if not isinstance(aoi, dict):
        raise AoiError('the body needs "aoi": a GeoJSON Polygon/MultiPolygon (or a Feature) in WGS84')
    return aoi


def create_app(settings: TilerSettings | None = None) -> FastAPI:
    """Build the tiler; the database pool is opened in the lifespan."""
    s = settings or TilerSettings()
    pg = PostgresSettings(
        pguser=s.db_user,
        pgpassword=s.db_password.get_secret_value(),
        pghost=s.db_host,
        pgport=s.db_port,
        pgdatabase=s.db_name,
        db_min_conn_size=s.db_min_connections,
        db_max_conn_size=s.db_max_connections,
    )
    gdal = {**s.s3().gdal_config(), "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await connect_to_db(app, settings=pg)
        try:
            yield
        finally:
            await close_db_connection(app)

    app = FastAPI(
        title="landstack tiler",
        description="Map tiles, previews, AOI statistics and the web map of the landstack products",
        root_path=s.root_path,
        lifespan=lifespan,
        openapi_url="/api",
        docs_url="/api.html",
    )
    app.state.settings = s
    status_codes: dict[type[Exception], int] = {**DEFAULT_STATUS_CODES, **MOSAIC_STATUS_CODES}
    status_codes.update(PGSTAC_STATUS_CODES)  # type: ignore[arg-type]
    add_exception_handlers(app, status_codes)
    app.add_exception_handler(TilerError, _tiler_error)  # type: ignore[arg-type]

    common: dict[str, Any] = {
        "colormap_dependency": product_colormap,
        "environment_dependency": lambda: gdal,
        "templates": _templates,
    }
    searches = MosaicTilerFactory(
        path_dependency=SearchIdParams,
        router_prefix="/searches/{search_id}",
        add_statistics=True,
        add_part=True,
        add_viewer=False,
        extensions=[searchInfoExtension(), wmtsExtensionMosaic()],
        **common,
    )
    app.include_router(searches.router, tags=["STAC search mosaic"], prefix="/searches/{search_id}")
    add_search_register_route(
        app,
        prefix="/searches",
        tile_dependencies=[
            searches.layer_dependency,
            searches.dataset_dependency,
            searches.pixel_selection_dependency,
            searches.process_dependency,
            searches.render_dependency,
            searches.assets_accessor_dependency,
            searches.reader_dependency,
            searches.backend_dependency,
        ],
        tags=["STAC search mosaic"],
    )
    # The statistics route comes before the collection mosaic so its path is never taken as a tile.
    app.add_api_route(
        "/collections/{collection_id}/aoi-statistics",
        _statistics_endpoint,
        methods=["POST"],
        tags=["AOI statistics"],
        name="AOI statistics",
    )
    collection = MosaicTilerFactory(
        path_dependency=CollectionIdParams,
        router_prefix="/collections/{collection_id}",
        add_statistics=True,
        add_part=True,
        add_viewer=False,
        extensions=[searchInfoExtension(), wmtsExtensionMosaic()],
        **common,
    )
    app.include_router(
        collection.router, tags=["STAC collection mosaic"], prefix="/collections/{collection_id}"
    )
    item = MultiBaseTilerFactory(
        reader=PgSTACReader,
        path_dependency=ItemIdParams,
        router_prefix="/collections/{collection_id}/items/{item_id}",
        add_viewer=False,
        extensions=[wmtsExtension()],
        **common,
    )
    app.include_router(item.router, tags=["STAC item"], prefix="/collections/{collection_id}/items/{item_id}")
    app.include_router(TMSFactory().router, tags=["Tiling schemes"])
    app.include_router(webmap.router)

    app.add_middleware(
        CacheControlMiddleware, cachecontrol=s.cache_control, exclude_path={r"/map.*", r"/_mgmt/.*"}
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=s.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
    )

    # Like the STAC API: /_mgmt/ping only says the process serves (liveness must not restart pods
    # while the database is away); /_mgmt/health also asks the database (readiness).
    @app.get("/_mgmt/ping", tags=["Health"])
    def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_mgmt/health", tags=["Health"], response_model=None)
    def health(request: Request) -> dict[str, str] | JSONResponse:
        try:
            # A short wait: a probe times out after a few seconds, the pool's default is 30 s.
            with request.app.state.dbpool.connection(timeout=3) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as e:
            return JSONResponse(status_code=503, content={"status": "unavailable", "database": str(e)})
        return {"status": "ok", "database": "ok"}

    return app


def _statistics_endpoint(
    request: Request,
    collection_id: Annotated[str, Path(description="product collection id")],
    body: Annotated[dict[str, Any], Body(description='{"aoi": GeoJSON polygon, "years": [2018, 2021]}')],
) -> dict[str, Any]:
    """Area per class (km², %) or mean/sum of a layer inside an AOI, per reference year."""
    s: TilerSettings = request.app.state.settings
    if collection_id not in _PRODUCTS:
        raise UnknownLayerError(
            f"{collection_id!r} is not a product layer; use one of `landstack catalog list`"
        )
    aoi = _aoi_geometry(body)
    area = aoi_area_km2(aoi)
    if area > s.max_aoi_km2:
        raise AoiError(
            f"the AOI covers {area:,.0f} km², more than the {s.max_aoi_km2:,.0f} km² one request may read; "
            "split it or raise LANDSTACK_TILER_MAX_AOI_KM2"
        )
    years = body.get("years")
    if years is not None and (
        not isinstance(years, list) or not all(isinstance(y, int) and 1900 < y < 2200 for y in years)
    ):
        raise AoiError(
            f'"years" must be a list of reference years such as [2018, 2021], not {json.dumps(years)}'
        )
    by_year = items_for(request.app.state.dbpool, collection_id, aoi, years, s.max_items)
    with gdal_env(s.s3(), GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        return aoi_statistics(collection_id, aoi, by_year)


async def _tiler_error(request: Request, exc: TilerError) -> JSONResponse:
    status = 404 if isinstance(exc, UnknownLayerError) else 400 if isinstance(exc, AoiError) else 502
    if isinstance(exc, ReadError):
        status = 502
    return JSONResponse(status_code=status, content={"code": type(exc).__name__, "detail": str(exc)})
