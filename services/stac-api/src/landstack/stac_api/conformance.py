"""Where stac-fastapi-pgstac 7.2 deviates from the STAC API specification, and our corrections.

- Item responses filtered by the fields extension are sent as `application/json`; an
  ItemCollection is GeoJSON whatever the fields, so they are sent as `application/geo+json`.
- `collections` in a POST search must be an array, but clients send a single id as a string;
  a string is accepted as a comma-separated list (as in GET).
- The transaction extension refuses an item without `links`, which STAC allows to be empty and
  which the server computes anyway; a missing `links` is read as `[]`.
- `"fields": null` is accepted, but the fields extension defines an object: it is a 400.
- The fields extension itself is applied here, after the search (see `fields.py`): pgstac
  ignores the difference between a missing and an empty `include`.
- pgstac strips null values, so an item with a period (`"datetime": null`, which STAC requires
  to be present, with start/end_datetime) comes back without `datetime`; it is restored.
- Paging links are written with rel `previous`; STAC API and pystac-client use `prev`; the
  paging links of `/collections` are typed GeoJSON, but a page of collections is JSON.
- A POST search filter must be CQL2-JSON; CQL2-text (with `filter-lang`) is parsed into it.
- Sort is declared only as v1.1.0, which clients knowing v1.0.0 do not recognise; v1.1.0 only
  adds sortables to v1.0.0, so both are declared.
- The query extension accepts only the comparison operators; the substring operators
  (startsWith, endsWith, contains) and `in` are translated into the equivalent CQL2 filter.
- A collection of the catalogue always links (`describedby`) to the ISO 19139 record this API
  serves, whatever address it was published with.
"""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import urljoin

from cql2 import Expr
from fastapi import Request
from pydantic import BaseModel, Field, field_validator, model_validator
from stac_fastapi.extensions.query import QueryExtension as _BaseQueryExtension
from stac_fastapi.extensions.sort import SearchSortExtension
from stac_fastapi.pgstac.core import CoreCrudClient
from stac_fastapi.pgstac.types.search import PgstacSearch
from stac_fastapi.types.requests import get_base_url
from stac_pydantic import Item, ItemCollection
from stac_pydantic.links import Links
from starlette.responses import Response

from landstack.catalog import layer_ids
from landstack.catalog.stac import ISO19139_MEDIA_TYPE
from landstack.stac_api.assets import AssetLinker
from landstack.stac_api.fields import FieldsSpec

GEOJSON = "application/geo+json"

# query-extension operator -> CQL2 operator (the substring ones become `like`)
_COMPARISON = {"eq": "=", "neq": "<>", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_SUBSTRING = {"startsWith": "{}%", "endsWith": "%{}", "contains": "%{}%"}


def _fix_links(collection: dict[str, Any]) -> dict[str, Any]:
    for link in collection.get("links") or []:
        if link.get("rel") == "previous":
            link["rel"] = "prev"
    return collection


def _restore_datetime(item: dict[str, Any]) -> dict[str, Any]:
    props = item.get("properties")
    # Only a null datetime goes missing (pgstac strips nulls). Not applied to fields-filtered
    # responses, where leaving datetime out may be what the client asked for.
    if isinstance(props, dict) and "datetime" not in props and "start_datetime" in props:
        props["datetime"] = None
    return item


def _get_fields(request: Request, kwargs: dict[str, Any]) -> FieldsSpec | None:
    """The GET `fields` parameter as a spec; it is taken out of `kwargs` (applied here, not in pgstac)."""
    values = kwargs.pop("fields", None)
    if values is None and "fields" not in request.query_params:
        return None
    kwargs["fields"] = None
    return FieldsSpec.from_get(list(values or []))


def _as_geojson(result: Any, spec: FieldsSpec | None = None) -> Any:
    if isinstance(result, dict) and spec is not None:
        features = [spec.apply(_restore_datetime(f)) for f in result.get("features") or []]
        return _as_geojson(Response(json.dumps({**result, "features": features}), status_code=200))
    if isinstance(result, Response):
        if result.status_code != 200:
            return result
        body = _fix_links(json.loads(bytes(result.body)))
        headers = {
            k: v for k, v in result.headers.items() if k.lower() not in ("content-type", "content-length")
        }
        return Response(json.dumps(body), status_code=200, headers=headers, media_type=GEOJSON)
    if isinstance(result, dict):
        _fix_links(result)
        for feature in result.get("features") or []:
            _restore_datetime(feature)
    return result


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def query_to_cql2(query: dict[str, Any]) -> dict[str, Any]:
    """A query-extension object as the equivalent CQL2-JSON filter."""
    args: list[dict[str, Any]] = []
    for prop, ops in query.items():
        if not isinstance(ops, dict):
            ops = {"eq": ops}
        for op, value in ops.items():
            ref = {"property": prop}
            if op in _COMPARISON:
                args.append({"op": _COMPARISON[op], "args": [ref, value]})
            elif op in _SUBSTRING:
                args.append({"op": "like", "args": [ref, _SUBSTRING[op].format(_escape_like(str(value)))]})
            elif op == "in":
                values = value if isinstance(value, list) else [value]
                args.append({"op": "in", "args": [ref, values]})
            else:
                raise ValueError(
                    f"query operator {op!r} on {prop!r} is not supported; use one of "
                    f"{sorted([*_COMPARISON, *_SUBSTRING, 'in'])}"
                )
    return args[0] if len(args) == 1 else {"op": "and", "args": args}


class LandstackSearch(PgstacSearch):
    """POST /search body with the corrections listed in the module docstring."""

    @field_validator("collections", mode="before", check_fields=False)
    @classmethod
    def _collections_string(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [c.strip() for c in v.split(",") if c.strip()]
        return v

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        # One validator, so the text filter is JSON before `query` is and-ed to it.
        if isinstance(data, dict) and "fields" in data and data["fields"] is None:
            raise ValueError("'fields' must be an object with 'include' and/or 'exclude' arrays, not null")
        return _query_as_filter(_cql2_text_as_json(data))


def _cql2_text_as_json(data: Any) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get("filter"), str):
        return data
    lang = data.get("filter-lang", data.get("filter_lang"))
    if lang not in (None, "cql2-text"):
        return data
    try:
        expr = Expr(data["filter"])
        expr.validate()
    except Exception as e:  # cql2 raises bare Exceptions on parse errors
        raise ValueError(f"invalid cql2-text filter {data['filter']!r}: {e}") from e
    data = {k: v for k, v in data.items() if k not in ("filter_lang", "filter-lang")}
    data["filter"], data["filter-lang"] = expr.to_json(), "cql2-json"
    return data


def _query_as_filter(data: Any) -> Any:
    if not isinstance(data, dict) or not data.get("query"):
        return data
    query = data["query"]
    if isinstance(query, str):
        query = json.loads(query)
    cql = query_to_cql2(query)
    # Both GET (cql2-text already parsed) and POST filters are CQL2-JSON at this point.
    data = {k: v for k, v in data.items() if k != "query"}
    existing = data.get("filter")
    data["filter"] = cql if existing is None else {"op": "and", "args": [existing, cql]}
    data["filter-lang"] = "cql2-json"
    data.pop("filter_lang", None)
    return data


class _QueryPost(BaseModel):
    """Any operator is accepted here; LandstackSearch translates or refuses it with a clear error."""

    query: dict[str, dict[str, Any]] | None = None


class QueryExtension(_BaseQueryExtension):
    """The query extension with every operator of the specification."""

    POST = _QueryPost


def sort_extension() -> SearchSortExtension:
    """The search sort extension declared as v1.1.0 and as the v1.0.0 it extends."""
    ext = SearchSortExtension()
    ext.conformance_classes = [*ext.conformance_classes, "https://api.stacspec.org/v1.0.0/item-search#sort"]
    return ext


class LenientItem(Item):
    """An item whose `links` may be omitted (the server builds them)."""

    links: Links = Field(default_factory=lambda: Links([]))


class LenientItemCollection(ItemCollection):
    features: list[LenientItem]


class LandstackClient(CoreCrudClient):
    """stac-fastapi-pgstac's client with GeoJSON responses and INSPIRE links."""

    async def post_search(self, search_request: PgstacSearch, request: Request, **kwargs: Any) -> Any:
        # The raw body tells a missing `include` from a null one (the model cannot).
        spec = FieldsSpec.from_post(await request.json()) if getattr(search_request, "fields", None) else None
        if spec is not None:
            search_request.fields = None
        result = await super().post_search(search_request, request=request, **kwargs)
        return _as_geojson(_link_assets(result, request), spec)

    async def get_search(self, request: Request, **kwargs: Any) -> Any:
        spec = _get_fields(request, kwargs)
        return _as_geojson(_link_assets(await super().get_search(request, **kwargs), request), spec)

    async def item_collection(self, collection_id: str, request: Request, **kwargs: Any) -> Any:
        spec = _get_fields(request, kwargs)
        result = await super().item_collection(collection_id, request, **kwargs)
        return _as_geojson(_link_assets(result, request), spec)

    async def get_item(self, *args: Any, **kwargs: Any) -> Any:
        item = await super().get_item(*args, **kwargs)
        if not isinstance(item, dict):
            return item
        linker = _linker(kwargs["request"])
        if linker is not None:
            linker.item(item, get_base_url(kwargs["request"]))
        return _restore_datetime(item)

    async def get_collection(self, *args: Any, **kwargs: Any) -> Any:
        collection = await super().get_collection(*args, **kwargs)
        _link_record(collection, kwargs["request"])
        linker = _linker(kwargs["request"])
        if linker is not None and isinstance(collection, dict):
            linker.collection(collection)
        return collection

    async def all_collections(self, *args: Any, **kwargs: Any) -> Any:
        result = await super().all_collections(*args, **kwargs)
        if isinstance(result, dict):
            for link in _fix_links(result).get("links") or []:
                if link.get("rel") in ("next", "prev"):
                    link["type"] = "application/json"  # a page of collections is not GeoJSON
            linker = _linker(kwargs["request"])
            for collection in result.get("collections", []):
                _link_record(collection, kwargs["request"])
                if linker is not None:
                    linker.collection(collection)
        return result


def _linker(request: Request) -> AssetLinker | None:
    linker = getattr(request.app.state, "asset_linker", None)
    return linker if isinstance(linker, AssetLinker) and linker.active else None


def _link_assets(result: Any, request: Request) -> Any:
    """Search results with public asset hrefs and map links (see assets.py)."""
    linker = _linker(request)
    if linker is None or not isinstance(result, dict):
        return result
    base = get_base_url(request)
    for feature in result.get("features") or []:
        linker.item(feature, base)
    return result


def _link_record(collection: dict[str, Any], request: Request) -> None:
    cid = collection.get("id")
    if cid not in _known_ids() or "links" not in collection:
        return
    href = urljoin(get_base_url(request), f"collections/{cid}/inspire.xml")
    links = [
        lk
        for lk in collection["links"]
        if lk.get("rel") != "describedby" or lk.get("type") != ISO19139_MEDIA_TYPE
    ]
    links.append(
        {
            "rel": "describedby",
            "href": href,
            "type": ISO19139_MEDIA_TYPE,
            "title": f"ISO 19139 / INSPIRE metadata record of {cid}",
        }
    )
    collection["links"] = links


@functools.cache
def _known_ids() -> frozenset[str]:
    return frozenset(layer_ids())
