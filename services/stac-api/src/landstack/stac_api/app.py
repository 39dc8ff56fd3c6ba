"""The STAC API application: stac-fastapi-pgstac with protected writes and INSPIRE records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, cast

import attr
from brotli_asgi import BrotliMiddleware
from fastapi import Body, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from stac_fastapi.api.app import StacApi
from stac_fastapi.api.middleware import ProxyHeaderMiddleware
from stac_fastapi.api.models import (
    CollectionUri,
    GeoJSONResponse,
    ItemCollectionUri,
    ItemUri,
    create_get_request_model,
    create_post_request_model,
    create_request_model,
)
from stac_fastapi.api.models import JSONResponse as StacJSONResponse
from stac_fastapi.api.routes import create_async_endpoint
from stac_fastapi.extensions import BulkTransactionExtension
from stac_fastapi.extensions.filter import ItemCollectionFilterExtension, SearchFilterExtension
from stac_fastapi.extensions.query import QueryConformanceClasses
from stac_fastapi.extensions.transaction import TransactionExtension
from stac_fastapi.pgstac.config import PostgresSettings
from stac_fastapi.pgstac.config import Settings as PgstacSettings
from stac_fastapi.pgstac.core import health_check
from stac_fastapi.pgstac.db import close_db_connection, connect_to_db
from stac_fastapi.pgstac.models.extensions import Extensions
from stac_fastapi.pgstac.transactions import TransactionsClient
from stac_fastapi.types.search import APIRequest
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from landstack.stac_api import inspire, store_route
from landstack.stac_api.assets import AssetLinker
from landstack.stac_api.auth import WRITE_ROUTES, Authenticator, require_write
from landstack.stac_api.bulk import LoaderBulkTransactions
from landstack.stac_api.conformance import (
    LandstackClient,
    LandstackSearch,
    LenientItem,
    LenientItemCollection,
    QueryExtension,
    sort_extension,
)
from landstack.stac_api.errors import AuthError, ConfigError
from landstack.stac_api.queryables import LandstackFilters
from landstack.stac_api.settings import ApiSettings

_VERSION = "0.1.0"


@attr.s
class _PostItem(CollectionUri):
    item: Annotated[LenientItem | LenientItemCollection, Body()] = attr.ib(default=None)


@attr.s
class _PutItem(ItemUri):
    item: Annotated[LenientItem, Body()] = attr.ib(default=None)


def _pgstac_settings(s: ApiSettings) -> PgstacSettings:
    # Built from our settings only: stac-fastapi's own settings would also read unprefixed env vars.
    return PgstacSettings(
        stac_fastapi_title=s.title,
        stac_fastapi_description=s.description,
        stac_fastapi_landing_id="landstack",
        stac_fastapi_version=_VERSION,
        root_path=s.root_path,
        cors_origins=s.cors_origins,
        cors_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        cors_headers=["Content-Type", "Authorization"],
        enable_transactions_extensions=True,
        use_api_hydrate=s.api_hydrate,
        enabled_extensions=None,
    )


def _postgres_settings(s: ApiSettings) -> PostgresSettings:
    return PostgresSettings(
        pguser=s.db_user,
        pgpassword=s.db_password.get_secret_value(),
        pghost=s.db_host,
        pgport=s.db_port,
        pgdatabase=s.db_name,
        db_min_conn_size=s.db_min_connections,
        db_max_conn_size=s.db_max_connections,
    )


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build the STAC API; the database pools are opened in the lifespan, not here."""
    s = settings or ApiSettings()
    pg_settings = _pgstac_settings(s)
    db = _postgres_settings(s)
    authenticator = Authenticator(s)

    extensions = Extensions(
        search_map={
            "query": QueryExtension(),
            "sort": sort_extension(),
            "filter": SearchFilterExtension(client=LandstackFilters()),
        },
        item_collection_map={
            "query": QueryExtension(conformance_classes=[QueryConformanceClasses.ITEMS]),
            "filter": ItemCollectionFilterExtension(client=LandstackFilters()),
        },
        settings=pg_settings,
    )
    post_model = create_post_request_model(extensions.search, base_model=LandstackSearch)
    get_model = create_get_request_model(extensions.search)
    items_get_model = cast(
        type[APIRequest],
        create_request_model(
            model_name="ItemCollectionUri",
            base_model=ItemCollectionUri,
            extensions=extensions.item_collection,
            request_type="GET",
        ),
    )
    collection_search = extensions.collection_search
    assert collection_search is not None
    transactions = [
        _Transactions(client=TransactionsClient(), settings=pg_settings, response_class=StacJSONResponse),
        BulkTransactionExtension(client=LoaderBulkTransactions(dsn=s.dsn)),
    ]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await connect_to_db(app, postgres_settings=db, add_write_connection_pool=True)
        try:
            yield
        finally:
            await close_db_connection(app)

    app = FastAPI(
        openapi_url=pg_settings.openapi_url,
        docs_url=pg_settings.docs_url,
        redoc_url=None,
        root_path=s.root_path,
        title=s.title,
        description=s.description,
        lifespan=lifespan,
    )
    app.state.authenticator = authenticator
    linker = AssetLinker(s)
    app.state.asset_linker = linker
    app.add_exception_handler(AuthError, _auth_error)  # type: ignore[arg-type]
    # Registered before the STAC routes so /collections/{id}/inspire.xml is never shadowed.
    app.include_router(inspire.router)
    if s.serve_store:
        if linker.store is None:
            raise ConfigError("LANDSTACK_API_SERVE_STORE needs LANDSTACK_API_STORE_URL (the store to serve)")
        app.state.asset_store = linker.store
        app.state.store_prefixes = s.store_public_prefixes
        app.include_router(store_route.router)

    StacApi(
        app=app,
        settings=pg_settings,
        extensions=[*extensions.search, *extensions.item_collection, *transactions, collection_search],
        client=LandstackClient(pgstac_search_model=post_model),
        response_class=StacJSONResponse,
        items_get_request_model=items_get_model,
        search_get_request_model=get_model,
        search_post_request_model=post_model,
        collections_get_request_model=collection_search.GET,
        middlewares=[
            # Byte ranges of stored objects must reach the client as they are, never re-encoded.
            Middleware(BrotliMiddleware, excluded_handlers=[r"^/store/"]),
            Middleware(ProxyHeaderMiddleware),
            Middleware(
                CORSMiddleware,
                allow_origins=s.cors_origins,
                allow_methods=pg_settings.cors_methods,
                allow_headers=pg_settings.cors_headers,
                max_age=600,
            ),
        ],
        health_check=health_check,
        route_dependencies=[(WRITE_ROUTES, [Depends(require_write)])],  # type: ignore[list-item]
    )
    return app


class _Transactions(TransactionExtension):
    """The transaction extension accepting items without `links`, answering items as GeoJSON."""

    def register_create_item(self) -> None:
        self.router.add_api_route(
            name="Create Item",
            path="/collections/{collection_id}/items",
            status_code=201,
            response_class=GeoJSONResponse,
            methods=["POST"],
            endpoint=create_async_endpoint(self.client.create_item, _PostItem),
            dependencies=self.route_dependencies,
        )

    def register_update_item(self) -> None:
        self.router.add_api_route(
            name="Update Item",
            path="/collections/{collection_id}/items/{item_id}",
            response_class=GeoJSONResponse,
            methods=["PUT"],
            endpoint=create_async_endpoint(self.client.update_item, _PutItem),
            dependencies=self.route_dependencies,
        )


async def _auth_error(request: Request, exc: AuthError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="landstack"'}
    if exc.code:
        headers["WWW-Authenticate"] += f', error="{exc.code}"'
    code = "Unauthorized" if exc.status == 401 else "Forbidden"
    return JSONResponse(
        status_code=exc.status, content={"code": code, "description": exc.message}, headers=headers
    )
