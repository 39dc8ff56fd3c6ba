"""The object store: one URL root (file:// or s3://), all I/O through fsspec.

Writes are atomic: data goes to a temporary key beside the target and is moved into place, so a
reader never sees a half-written object and a failed write leaves nothing behind. Keys are
'/'-separated paths relative to the root; listings never show temporary keys.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from landstack.storage.errors import StoreError
from landstack.storage.options import S3Options, gdal_env
from landstack.storage.urls import filesystem, normalise_url, open_url

__all__ = ["TEMP_MARKER", "ObjectStore", "open_url"]

TEMP_MARKER = ".tmp-"


class ObjectStore:
    """A rooted view of a file:// or s3:// location (a plain local path is taken as file://)."""

    def __init__(self, url: str, s3: S3Options | None = None) -> None:
        self.url = normalise_url(url).rstrip("/")
        self.s3 = s3 or S3Options()
        self.storage_options = self.s3.for_url(self.url)
        self.fs, self._root = filesystem(self.url, self.s3)
        # Nothing is created here: reading must not write; writes create the folders they need.
        self._root = self._root.rstrip("/")

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    @property
    def protocol(self) -> str:
        """'file' or 's3'."""
        return self.url.split("://", 1)[0]

    # --- keys, hrefs and paths ------------------------------------------------------------------

    def _key(self, key: str) -> str:
        clean = key.strip("/")
        if any(part in ("..", ".") for part in clean.split("/")):
            raise StoreError(f"key {key!r} contains '.' or '..'; give a plain path under {self.url}")
        return clean

    def href(self, key: str) -> str:
        """Absolute URL of a key (what STAC asset hrefs carry)."""
        k = self._key(key)
        return f"{self.url}/{k}" if k else self.url

    def path(self, key: str) -> str:
        """Filesystem path of a key for self.fs."""
        k = self._key(key)
        return f"{self._root}/{k}" if k else self._root

    def key_of(self, href: str) -> str:
        """The key of an href under this root (file://, s3://, a local path or /vsis3/ path).

        Raises StoreError when the href lies outside the store.
        """
        if self.protocol == "s3" and href.startswith("/vsis3/"):
            href = "s3://" + href[len("/vsis3/") :]
        try:
            norm = normalise_url(href)
        except StoreError as e:
            raise StoreError(f"{href} is not inside the object store {self.url}: {e}") from e
        raw = norm.split("://", 1)[1]
        path = posixpath.normpath(raw) if raw else raw
        scheme = norm.split("://", 1)[0]
        root = self._root
        if scheme != self.protocol or not (path == root or path.startswith(root + "/")):
            raise StoreError(
                f"{href} is outside the object store {self.url}; give a key or an href under {self.url}/"
            )
        return path[len(root) + 1 :]

    def gdal_path(self, key: str) -> str:
        """A path GDAL/rasterio can open: the local path, or /vsis3/bucket/key (inside `gdal_env()`)."""
        p = self.path(key)
        return p if self.protocol == "file" else f"/vsis3/{p}"

    def gdal_env(self, **options: Any) -> contextlib.AbstractContextManager[None]:
        """The rasterio environment in which `gdal_path`s of this store open (see storage.gdal_env)."""
        return gdal_env(self.s3 if self.protocol == "s3" else None, **options)

    # --- reading --------------------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        try:
            return bool(self.fs.exists(self.path(key)))
        except OSError as e:
            raise StoreError(f"cannot check {self.href(key)}: {e}") from e

    def list(self, prefix: str = "", suffix: str = "") -> list[str]:
        """Keys under a folder prefix (recursive) ending in `suffix`, sorted; temporary keys are skipped.

        A prefix that names one object lists that object.
        """
        base = self.path(prefix)
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise StoreError(f"cannot list {self.href(prefix)}: {e}") from e
        root = self._root + "/"
        keys = [f[len(root) :] for f in found if f.startswith(root)]
        return sorted(k for k in keys if k.endswith(suffix) and TEMP_MARKER not in k)

    def read_bytes(self, key: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self.path(key)))
        except FileNotFoundError as e:
            raise StoreError(f"{self.href(key)} does not exist") from e
        except (OSError, IsADirectoryError) as e:
            raise StoreError(f"cannot read {self.href(key)}: {e}") from e

    def read_text(self, key: str, encoding: str = "utf-8") -> str:
        try:
            return self.read_bytes(key).decode(encoding)
        except UnicodeDecodeError as e:
            raise StoreError(f"{self.href(key)} is not {encoding} text: {e}") from e

    def read_json(self, key: str) -> Any:
        try:
            return json.loads(self.read_bytes(key))
        except json.JSONDecodeError as e:
            raise StoreError(f"{self.href(key)} is not valid JSON: {e}") from e

    def read_many(self, keys: Sequence[str]) -> dict[str, bytes | Exception]:
        """The bytes of many keys in one concurrent request batch; a failed key maps to its error."""
        if not keys:
            return {}
        paths = {self.path(k): k for k in keys}
        try:
            got = self.fs.cat(list(paths), on_error="return")
        except OSError as e:
            raise StoreError(f"cannot read {len(keys)} objects under {self.url}: {e}") from e
        if not isinstance(got, dict):  # one path: fsspec returns the bytes themselves
            got = {next(iter(paths)): got}
        out: dict[str, bytes | Exception] = {}
        for path, key in paths.items():
            value = got.get(path, FileNotFoundError(path))
            out[key] = value if isinstance(value, Exception) else bytes(value)
        return out

    def get_file(self, key: str, local_path: str | Path) -> Path:
        """Download a key to a local file (written beside it under a temporary name, then renamed)."""
        dest = Path(local_path)
        tmp = dest.with_name(f"{dest.name}{TEMP_MARKER}{uuid.uuid4().hex[:12]}")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(self.path(key), str(tmp))
            tmp.replace(dest)
        except FileNotFoundError as e:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"{self.href(key)} does not exist") from e
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot download {self.href(key)} to {dest}: {e}") from e
        return dest

    def open(self, key: str, mode: str = "rb") -> Any:
        """A file object for a key; for writing prefer `put_*` or `atomic_path` (atomic)."""
        try:
            return self.fs.open(self.path(key), mode)
        except FileNotFoundError as e:
            raise StoreError(f"{self.href(key)} does not exist") from e
        except OSError as e:
            raise StoreError(f"cannot open {self.href(key)}: {e}") from e

    # --- writing --------------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> str:
        """Write bytes atomically; returns the href."""
        with self.atomic_path(key) as tmp, self.fs.open(tmp, "wb") as f:
            f.write(data)
        return self.href(key)

    def put_json(self, key: str, doc: Any) -> str:
        """Write a JSON document atomically; returns the href."""
        return self.put_bytes(key, json.dumps(doc, indent=2).encode())

    def put_file(self, local_path: str | Path, key: str) -> str:
        """Upload a local file atomically; returns the href."""
        if not Path(local_path).is_file():
            raise StoreError(f"cannot upload {local_path} to {self.href(key)}: it is not a file")
        with self.atomic_path(key) as tmp:
            self.fs.put_file(str(local_path), tmp)
        return self.href(key)

    @contextlib.contextmanager
    def atomic_path(self, key: str) -> Iterator[str]:
        """A temporary path (for self.fs) to write; moved onto `key` on success, removed on failure."""
        final = self.path(key)
        if final == self._root:
            raise StoreError(f"cannot write the store root {self.url}; give a key under it")
        tmp = f"{final}{TEMP_MARKER}{uuid.uuid4().hex[:12]}"
        if self.protocol == "file":
            Path(final).parent.mkdir(parents=True, exist_ok=True)
        try:
            yield tmp
            self.fs.mv(tmp, final)
        except BaseException as e:
            with contextlib.suppress(Exception):
                if self.fs.exists(tmp):
                    self.fs.rm(tmp)
            if isinstance(e, OSError):
                raise StoreError(f"cannot write {self.href(key)}: {e}") from e
            raise

    def delete(self, key: str, recursive: bool = False) -> bool:
        """Remove a key (with `recursive`, everything under a prefix); False if nothing was there."""
        path = self.path(key)
        if path == self._root and not key.strip("/"):
            raise StoreError(f"refusing to delete the store root {self.url}; give a key under it")
        try:
            if not self.fs.exists(path):
                return False
            self.fs.rm(path, recursive=recursive)
        except IsADirectoryError as e:
            raise StoreError(f"{self.href(key)} is a prefix; delete it with recursive=True") from e
        except OSError as e:
            raise StoreError(f"cannot delete {self.href(key)}: {e}") from e
        return True
