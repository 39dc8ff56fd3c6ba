"""Publishing collections and items from the object store into pgstac or a STAC API.

Collections are upserted first, then items in bulk chunks (pypgstac's loader straight into the
database, or the API's bulk transactions endpoint with a bearer token). Every item is validated
offline and its asset hrefs must exist before it is loaded; a refused item is reported with its
id and the reason, and the others still load. Upserts make publishing idempotent: running it
twice leaves the same database.
"""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpx
import psycopg

from landstack.catalog.validation import StacValidator, get_validator
from landstack.pipelines.errors import PipelineError
from landstack.pipelines.settings import Settings, get_settings
from landstack.storage import ObjectStore, StoreError, UrlIndex
from landstack.storage.layout import COLLECTIONS as COLLECTIONS_PREFIX
from landstack.storage.layout import PRODUCTS as PRODUCTS_PREFIX

CHUNK = 1000


class PublishError(PipelineError):
    """Publishing could not proceed (target unreachable, collection refused, ...)."""


@dataclass(frozen=True)
class Refused:
    """An item (or collection) that was not loaded, and why."""

    id: str
    source: str
    reason: str


@dataclass
class PublishReport:
    """What a publish run did."""

    target: str
    collections: list[str] = field(default_factory=list)
    items_loaded: int = 0
    refused: list[Refused] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.refused

    @property
    def items_per_second(self) -> float:
        return self.items_loaded / self.seconds if self.seconds > 0 else 0.0


class Target(Protocol):
    """Where collections and items go."""

    name: str

    def upsert_collections(self, collections: list[dict[str, Any]]) -> None: ...
    def existing_collections(self) -> set[str]: ...
    def upsert_items(self, items: list[dict[str, Any]]) -> list[Refused]: ...
    def close(self) -> None: ...


class PgstacTarget:
    """Straight into a pgstac database with pypgstac's bulk loader (COPY into partitions)."""

    def __init__(self, dsn: str) -> None:
        from pypgstac.db import PgstacDB
        from pypgstac.load import Loader

        self.name = f"pgstac {_redact(dsn)}"
        try:
            # pypgstac's pool retries for half a minute; a plain connection fails at once
            psycopg.connect(dsn, connect_timeout=10).close()
            self.db = PgstacDB(dsn=dsn)
            self.loader = Loader(db=self.db)
            self.loader.check_version()
        except Exception as e:
            raise PublishError(
                f"cannot use the pgstac database {_redact(dsn)}: {' '.join(str(e).split())}; "
                "start it with 'landstack services up' or check LANDSTACK_PG_*"
            ) from e

    def upsert_collections(self, collections: list[dict[str, Any]]) -> None:
        from pypgstac.load import Methods

        try:
            self.loader.load_collections(iter(collections), insert_mode=Methods.upsert)
        except Exception as e:
            raise PublishError(
                f"pgstac refused the collections {[c.get('id') for c in collections]}: {e}"
            ) from e

    def existing_collections(self) -> set[str]:
        rows = self.db.query("SELECT id FROM pgstac.collections")
        return {str(r[0]) for r in rows}

    def upsert_items(self, items: list[dict[str, Any]]) -> list[Refused]:
        from pypgstac.load import Methods

        try:
            self.loader.load_items(iter(items), insert_mode=Methods.upsert)
        except Exception as e:
            # One bad item fails the whole COPY: load the chunk item by item to name it.
            if len(items) == 1:
                return [Refused(str(items[0].get("id")), "pgstac", f"pgstac refused the item: {e}")]
            refused: list[Refused] = []
            for item in items:
                refused.extend(self.upsert_items([item]))
            return refused
        return []

    def close(self) -> None:
        self.db.close()


class ApiTarget:
    """Through the STAC API's transactions (collections) and bulk transactions (items)."""

    def __init__(self, url: str, token: str | None, timeout: float = 120.0) -> None:
        self.name = f"STAC API {url}"
        self.url = url.rstrip("/") + "/"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(headers=headers, timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.client.request(method, urljoin(self.url, path), **kwargs)
        except httpx.HTTPError as e:
            raise PublishError(f"cannot reach the STAC API at {self.url}: {e}; is it running?") from e

    @staticmethod
    def _fail(resp: httpx.Response, what: str) -> PublishError:
        hint = ""
        if resp.status_code in (401, 403):
            hint = "; set LANDSTACK_STAC_API_TOKEN to an API key or access token with the write scope"
        return PublishError(f"the STAC API refused {what}: HTTP {resp.status_code} {resp.text[:300]}{hint}")

    def upsert_collections(self, collections: list[dict[str, Any]]) -> None:
        for c in collections:
            resp = self._call("POST", "collections", json=c)
            if resp.status_code == 409:
                resp = self._call("PUT", f"collections/{c['id']}", json=c)
            if resp.status_code >= 300:
                raise self._fail(resp, f"collection {c.get('id')!r}")

    def existing_collections(self) -> set[str]:
        found: set[str] = set()
        path: str | None = "collections?limit=100"
        while path:
            resp = self._call("GET", path)
            if resp.status_code != 200:
                raise self._fail(resp, "listing the collections")
            body = resp.json()
            found.update(c["id"] for c in body.get("collections", []))
            path = next((lk["href"] for lk in body.get("links", []) if lk.get("rel") == "next"), None)
        return found

    def upsert_items(self, items: list[dict[str, Any]]) -> list[Refused]:
        refused: list[Refused] = []
        by_collection: dict[str, dict[str, Any]] = {}
        for item in items:
            by_collection.setdefault(item["collection"], {})[item["id"]] = item
        for cid, group in by_collection.items():
            resp = self._call(
                "POST", f"collections/{cid}/bulk_items", json={"items": group, "method": "upsert"}
            )
            if resp.status_code >= 300:
                raise self._fail(resp, f"{len(group)} items of {cid!r}")
            for err in resp.json().get("errors") or []:
                refused.append(Refused(str(err.get("id")), "STAC API", str(err.get("msg"))))
        return refused

    def close(self) -> None:
        self.client.close()


def _redact(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password:
        return dsn.replace(f":{parts.password}@", ":***@")
    return dsn


class AssetChecker:
    """Checks that asset hrefs exist (file://, s3://, plain paths), listing each folder once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._index = UrlIndex(settings.s3())

    def missing(self, href: str) -> str | None:
        """None when the href exists; otherwise why it is refused."""
        scheme = urlsplit(href).scheme
        if scheme in ("http", "https"):
            return None  # not ours to check offline; products only reference the object store
        if scheme not in ("", "file", "s3"):
            return f"asset href {href} uses the unsupported scheme {scheme!r}; use file:// or s3://"
        try:
            found = self._index.exists(href)
        except StoreError as e:
            return f"cannot check asset href {href}: {e}"
        return None if found else f"asset href {href} does not exist"


def _absolute_hrefs(item: dict[str, Any], file_href: str) -> None:
    """Relative asset hrefs resolved against the item file (urljoin does not know s3://)."""
    scheme, _, rest = file_href.partition("://")
    folder = posixpath.dirname(rest)
    for asset in (item.get("assets") or {}).values():
        href = asset.get("href") if isinstance(asset, dict) else None
        if isinstance(href, str) and href and not urlsplit(href).scheme and not href.startswith("/"):
            joined = posixpath.normpath(posixpath.join(folder, href))
            if scheme == "file" and not joined.startswith("/"):
                joined = "/" + joined
            asset["href"] = f"{scheme}://{joined}"


def iter_documents(
    store: ObjectStore, prefix: str, kind: str
) -> Iterator[tuple[str, str, dict[str, Any] | Refused]]:
    """(where, file href, document) for every STAC document of `kind` under a prefix.

    `*.json` files hold one document, `*.ndjson` files one per line; a file that cannot be read
    or parsed yields a Refused naming it.
    """
    keys = [k for k in store.list(prefix) if k.endswith((".json", ".ndjson"))]
    for start in range(0, len(keys), 256):
        batch = keys[start : start + 256]
        contents = store.read_many(batch)
        for key in batch:
            href = store.href(key)
            raw = contents[key]
            if isinstance(raw, Exception):
                yield href, href, Refused(key, href, f"cannot read {href}: {raw}")
                continue
            lines = raw.splitlines() if key.endswith(".ndjson") else [raw]
            for n, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                where = f"{href}:{n}" if key.endswith(".ndjson") else href
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError as e:
                    yield where, href, Refused(key, where, f"not valid JSON: {e}")
                    continue
                if isinstance(doc, dict) and doc.get("type") == kind:
                    yield where, href, doc


def _chunks(it: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for x in it:
        chunk.append(x)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def publish(
    store: ObjectStore,
    target: Target,
    *,
    collections_prefix: str = COLLECTIONS_PREFIX,
    items_prefixes: Iterable[str] = (PRODUCTS_PREFIX,),
    validator: StacValidator | None = None,
    settings: Settings | None = None,
    check_assets: bool = True,
    chunk_size: int = CHUNK,
) -> PublishReport:
    """Upsert every collection, then every valid item whose assets exist, into `target`."""
    s = settings or get_settings()
    v = validator or get_validator(s.stac_schemas_dir)
    report = PublishReport(target=target.name)
    t0 = time.perf_counter()

    collections: list[dict[str, Any]] = []
    for source, _, doc in iter_documents(store, collections_prefix, "Collection"):
        if isinstance(doc, Refused):
            report.refused.append(doc)
            continue
        result = v.validate(doc)
        if not result.ok:
            report.refused.append(Refused(result.id, source, result.reason()))
            continue
        collections.append(doc)
    if collections:
        target.upsert_collections(collections)
    report.collections = [c["id"] for c in collections]
    known = target.existing_collections()

    checker = AssetChecker(s)
    candidates = (found for prefix in items_prefixes for found in iter_documents(store, prefix, "Feature"))
    for chunk in _chunks(candidates, chunk_size):
        ready: dict[tuple[str, str], dict[str, Any]] = {}
        for source, file_href, doc in chunk:
            if isinstance(doc, Refused):
                report.refused.append(doc)
                continue
            reason = _refusal(doc, file_href, v, known, checker if check_assets else None)
            if reason:
                report.refused.append(Refused(str(doc.get("id", "?")), source, reason))
                continue
            # The same id twice in one chunk would make the upsert touch a row twice.
            ready[(doc["collection"], doc["id"])] = doc
        if ready:
            bad = target.upsert_items(list(ready.values()))
            report.refused.extend(bad)
            report.items_loaded += len(ready) - len(bad)
    report.seconds = time.perf_counter() - t0
    return report


def _refusal(
    item: dict[str, Any], file_href: str, v: StacValidator, known: set[str], checker: AssetChecker | None
) -> str | None:
    result = v.validate(item)
    if not result.ok:
        return f"invalid STAC item: {result.reason()}"
    cid = item.get("collection")
    if not cid:
        return "the item has no 'collection'; set it to the id of a published collection"
    if cid not in known:
        return f"collection {cid!r} is not published; publish its collection first"
    _absolute_hrefs(item, file_href)
    if checker is not None:
        for key, asset in (item.get("assets") or {}).items():
            missing = checker.missing(str(asset.get("href", "")))
            if missing:
                return f"asset {key!r}: {missing}"
    return None
