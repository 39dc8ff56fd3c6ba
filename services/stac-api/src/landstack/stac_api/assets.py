"""What a client receives as asset hrefs and map links: URLs it can open from another machine.

Stored items keep the object-store hrefs they were published with (file:// locally, s3:// in the
cluster); the API answers with, in this order of preference,

- `<asset_base_url>/<key>` (a public bucket or a CDN in front of the store),
- a presigned https URL (`asset_presign_seconds > 0`, s3:// stores),
- `<api>/store/<key>` (`serve_store`, the read-only route of `store_route.py`),

and keeps an s3:// href as an alternate (STAC alternate-assets extension). With `tiler_url`,
product items get `xyz`/`wmts` links to their tiles (STAC web-map-links extension) and product
collections a tile link and a preview.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from landstack.catalog import layer_ids
from landstack.stac_api.errors import ConfigError
from landstack.stac_api.settings import ApiSettings
from landstack.storage import ObjectStore
from landstack.storage.errors import StoreError

ALTERNATE_EXTENSION = "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json"
WEB_MAP_EXTENSION = "https://stac-extensions.github.io/web-map-links/v1.2.0/schema.json"
TMS = "WebMercatorQuad"


def store_of(settings: ApiSettings) -> ObjectStore | None:
    """The object store the settings name, or None when no store_url is configured."""
    if not settings.store_url:
        return None
    try:
        return ObjectStore(settings.store_url, settings.s3())
    except StoreError as e:
        raise ConfigError(f"LANDSTACK_API_STORE_URL={settings.store_url!r} cannot be opened: {e}") from e


class AssetLinker:
    """Rewrites asset hrefs and adds web-map links in API responses (never in the database)."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.store = store_of(settings)
        self.tiler = settings.tiler_url.rstrip("/") if settings.tiler_url else None
        self._products = frozenset(layer_ids())

    @property
    def active(self) -> bool:
        """True when responses change at all."""
        return self.tiler is not None or (
            self.store is not None
            and bool(
                self.settings.asset_base_url
                or self.settings.asset_presign_seconds
                or self.settings.serve_store
            )
        )

    def public_href(self, href: str, api_base: str) -> str | None:
        """A URL another machine can fetch for a stored href, or None to leave the href as it is."""
        if self.store is None:
            return None
        try:
            key = self.store.key_of(href)
        except StoreError:
            return None
        s = self.settings
        if s.asset_base_url:
            return f"{s.asset_base_url.rstrip('/')}/{quote(key)}"
        if s.asset_presign_seconds and self.store.protocol == "s3":
            return str(self.store.fs.sign(self.store.path(key), expiration=s.asset_presign_seconds))
        if s.serve_store:
            return f"{api_base.rstrip('/')}/store/{quote(key)}"
        return None

    def item(self, item: dict[str, Any], api_base: str) -> dict[str, Any]:
        """The item as answered: public hrefs, s3 alternates, web-map links (changed in place)."""
        if not isinstance(item, dict):
            return item
        exts = item.get("stac_extensions")
        assets = item.get("assets")
        if isinstance(assets, dict):
            hrefs = [a for a in assets.values() if isinstance(a, dict) and isinstance(a.get("href"), str)]
            alternates = [self._asset(asset, api_base) for asset in hrefs]
            if any(alternates) and isinstance(exts, list) and ALTERNATE_EXTENSION not in exts:
                exts.append(ALTERNATE_EXTENSION)
        if self.tiler and item.get("collection") in self._products and isinstance(item.get("links"), list):
            item["links"].extend(self._item_map_links(item))
            if isinstance(exts, list) and WEB_MAP_EXTENSION not in exts:
                exts.append(WEB_MAP_EXTENSION)
        return item

    def _asset(self, asset: dict[str, Any], api_base: str) -> bool:
        original = asset["href"]
        public = self.public_href(original, api_base)
        if public is None:
            return False
        asset["href"] = public
        if original.startswith("s3://"):
            alternate = asset.setdefault("alternate", {})
            alternate["s3"] = {"href": original, "title": "S3 (needs S3 credentials for private buckets)"}
            return True
        return False

    def _item_map_links(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        cid, iid = item["collection"], item["id"]
        base = f"{self.tiler}/collections/{quote(cid)}/items/{quote(iid)}"
        query = urlencode({"assets": _asset_key(item)})
        return [
            {
                "rel": "xyz",
                "href": f"{base}/tiles/{TMS}/{{z}}/{{x}}/{{y}}.png?{query}",
                "type": "image/png",
                "title": f"{cid} {iid} map tiles",
            },
            {
                "rel": "wmts",
                "href": f"{base}/WMTSCapabilities.xml?{query}",
                "type": "application/xml",
                "title": f"{cid} {iid} WMTS",
            },
        ]

    def collection(self, collection: dict[str, Any]) -> dict[str, Any]:
        """A product collection with its mosaic tile link and preview (changed in place)."""
        cid = collection.get("id") if isinstance(collection, dict) else None
        if not self.tiler or cid not in self._products or not isinstance(collection.get("links"), list):
            return collection
        base = f"{self.tiler}/collections/{quote(str(cid))}"
        collection["links"] = [
            lk for lk in collection["links"] if lk.get("rel") not in ("xyz", "wmts", "preview")
        ]
        collection["links"] += [
            {
                "rel": "xyz",
                "href": f"{base}/tiles/{TMS}/{{z}}/{{x}}/{{y}}.png?assets=data",
                "type": "image/png",
                "title": f"{cid} map tiles (mosaic of the collection's items)",
            },
            {
                "rel": "wmts",
                "href": f"{base}/WMTSCapabilities.xml?assets=data",
                "type": "application/xml",
                "title": f"{cid} WMTS (mosaic of the collection's items)",
            },
            {
                "rel": "preview",
                "href": f"{self.tiler}/map?collection={quote(str(cid))}",
                "type": "text/html",
                "title": f"{cid} on the web map",
            },
        ]
        exts = collection.get("stac_extensions")
        if isinstance(exts, list) and WEB_MAP_EXTENSION not in exts:
            exts.append(WEB_MAP_EXTENSION)
        return collection


def _asset_key(item: dict[str, Any]) -> str:
    assets = item.get("assets") or {}
    for key, asset in assets.items():
        if "data" in (asset.get("roles") or []):
            return str(key)
    return "data"
