"""URLs the object-store layer accepts (file://, s3://, local paths) and the filesystems behind them.

Everything that turns a URL into an fsspec filesystem goes through `filesystem`, so the S3
endpoint, credentials and region come from one `S3Options` and an unsupported scheme fails the
same way everywhere.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec

from landstack.storage.errors import StoreError
from landstack.storage.options import S3Options

SCHEMES = ("file", "s3")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_FIX = "use file:///absolute/path, an absolute local path or s3://bucket/prefix"


def normalise_url(url: str) -> str:
    """`url` as file:///... or s3://bucket/...; raises StoreError naming a URL it cannot use."""
    if not isinstance(url, str) or not url.strip():
        raise StoreError(f"object store URL {url!r} is empty; {_FIX}")
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "" or (len(scheme) == 1 and url[1:3] in (":\\", ":/")):
        return Path(url).expanduser().resolve().as_uri()
    if scheme not in SCHEMES:
        raise StoreError(f"object store URL {url!r} uses the unsupported scheme {scheme!r}; {_FIX}")
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise StoreError(f"object store URL {url!r} is not an absolute file URL; {_FIX}")
        return f"file://{parts.path}"
    if not _BUCKET.match(parts.netloc):
        raise StoreError(
            f"object store URL {url!r} does not name a valid bucket ({parts.netloc!r}: 3-63 lower-case "
            f"letters, digits, '.' or '-'); {_FIX}"
        )
    return f"s3://{parts.netloc}{parts.path}"


def filesystem(url: str, s3: S3Options | None = None) -> tuple[Any, str]:
    """(fsspec filesystem, path on it) for a file:// / s3:// URL or local path.

    S3 listings are not cached, so objects written by other processes are seen at once.
    """
    norm = normalise_url(url)
    scheme, _, rest = norm.partition("://")
    try:
        if scheme == "s3":
            opts = (s3 or S3Options()).fsspec_options()
            return fsspec.filesystem("s3", use_listings_cache=False, **opts), rest.rstrip("/") or rest
        return fsspec.filesystem("file"), rest
    except (ValueError, ImportError) as e:
        raise StoreError(f"cannot open {url!r}: {e}; {_FIX}") from e


def open_url(url: str, mode: str = "rb", s3: S3Options | None = None) -> Any:
    """Open a file:// / s3:// URL or local path (a context manager yielding a file object)."""
    fs, path = filesystem(url, s3)
    return fsspec.core.OpenFile(fs, path, mode)


class UrlIndex:
    """Answers "does this URL exist?" for many URLs, listing each folder only once.

    Meant for checking every asset href of a batch of STAC items: N assets in one folder cost one
    listing, not N requests. Listings are kept for the lifetime of the index.
    """

    def __init__(self, s3: S3Options | None = None) -> None:
        self.s3 = s3
        self._fs: dict[str, Any] = {}
        self._listings: dict[tuple[str, str], set[str]] = {}

    def exists(self, url: str) -> bool:
        """Whether the object at `url` exists; StoreError if the URL is unusable or its folder unreadable."""
        scheme, _, rest = normalise_url(url).partition("://")
        if scheme not in self._fs:
            self._fs[scheme] = filesystem(f"{scheme}://{rest}", self.s3)[0]
        fs, path = self._fs[scheme], rest.rstrip("/")
        parent = posixpath.dirname(path)
        cache_key = (scheme, parent)
        if cache_key not in self._listings:
            try:
                listed = fs.ls(parent, detail=False)
                self._listings[cache_key] = {str(p).rstrip("/") for p in listed}
            except (FileNotFoundError, NotADirectoryError):
                self._listings[cache_key] = set()
            except OSError as e:
                raise StoreError(f"cannot list {parent!r} to check {url}: {e}") from e
        return path in self._listings[cache_key]
