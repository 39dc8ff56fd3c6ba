"""`/store/{key}`: the object store served read-only over HTTP, with range requests.

GDAL's /vsicurl/ (and QGIS, rasterio, browsers) read a COG by fetching its header and then only
the tiles it needs with `Range: bytes=a-b`; this route answers such requests from the store
(file:// or s3://) in `_CHUNK`-sized reads, so memory does not grow with the object.
Only keys under the configured public prefixes are served.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from landstack.storage import ObjectStore, StoreError

router = APIRouter(tags=["Object store (read-only)"])

_CHUNK = 1 << 20
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TYPES = {".tif": "image/tiff; application=geotiff", ".json": "application/json", ".xml": "application/xml"}


def _media_type(key: str) -> str:
    for suffix, media in _TYPES.items():
        if key.endswith(suffix):
            return media
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(first, last) of a single `bytes=` range, None without one, 'bad' when unsatisfiable."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # several ranges or another unit: answered with the whole object (RFC 9110)
    if not m.group(1):
        n = int(m.group(2))
        return (max(size - n, 0), size - 1) if n else "bad"
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else size - 1
    if first >= size or last < first:
        return "bad"
    return first, min(last, size - 1)


def _stream(store: ObjectStore, key: str, first: int, length: int) -> Iterator[bytes]:
    with store.fs.open(store.path(key), "rb") as f:
        f.seek(first)
        left = length
        while left > 0:
            data = f.read(min(_CHUNK, left))
            if not data:
                return
            left -= len(data)
            yield data


def _not_found(key: str) -> JSONResponse:
    return JSONResponse(
        status_code=404,
        content={"code": "NotFoundError", "description": f"no object {key!r} is published in the store"},
    )


@router.head("/store/{key:path}", name="Object store (headers)", response_class=Response)
def store_object_head(key: str, request: Request) -> Any:
    """Size, type and range support of an object of the store."""
    return store_object(key, request)


@router.get("/store/{key:path}", name="Object store", response_class=Response)
def store_object(key: str, request: Request) -> Any:
    """An object of the store, whole or a byte range."""
    store: ObjectStore = request.app.state.asset_store
    prefixes: list[str] = request.app.state.store_prefixes
    clean = key.strip("/")
    if not any(clean == p.strip("/") or clean.startswith(p.strip("/") + "/") for p in prefixes):
        return _not_found(key)
    try:
        info = store.fs.info(store.path(clean))
    except (FileNotFoundError, StoreError):
        return _not_found(key)
    except OSError as e:
        return JSONResponse(status_code=502, content={"code": "StoreError", "description": f"{key}: {e}"})
    if info.get("type") == "directory":
        return _not_found(key)
    size = int(info["size"])
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "public, max-age=300"}
    if etag := info.get("ETag") or info.get("etag"):
        headers["ETag"] = str(etag)
    rng = _byte_range(request.headers.get("range"), size)
    if rng == "bad":
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    media = _media_type(clean)
    if rng is None:
        first, length, status = 0, size, 200
    else:
        assert isinstance(rng, tuple)
        first, length, status = rng[0], rng[1] - rng[0] + 1, 206
        headers["Content-Range"] = f"bytes {rng[0]}-{rng[1]}/{size}"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media)
    return StreamingResponse(
        _stream(store, clean, first, length), status_code=status, headers=headers, media_type=media
    )
