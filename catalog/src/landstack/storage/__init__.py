"""landstack.storage: the one object-store layer every distribution uses.

`ObjectStore` (a rooted file:// or s3:// location with atomic writes), `S3Options` (endpoint,
credentials, region as fsspec options, GDAL configuration and an AWS session), `gdal_env` (the
rasterio environment for /vsis3/), `open_url` / `UrlIndex` (any file:// or s3:// URL) and
`layout` (where each kind of object lives under the root).
"""

from landstack.storage import layout
from landstack.storage.errors import StoreError
from landstack.storage.options import S3Options, S3Settings, gdal_env
from landstack.storage.store import ObjectStore
from landstack.storage.urls import UrlIndex, filesystem, normalise_url, open_url

__all__ = [
    "ObjectStore",
    "S3Options",
    "S3Settings",
    "StoreError",
    "UrlIndex",
    "filesystem",
    "gdal_env",
    "layout",
    "normalise_url",
    "open_url",
]
