"""The object store: one URL root (file:// or s3://), all I/O through fsspec.

Writes are atomic: data goes to a temporary key beside the target and is moved into place, so a
reader never sees a half-written object and a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
from fsspec.core import url_to_fs

from landstack.pipelines.errors import StoreError
from landstack.pipelines.settings import Settings, get_settings


class ObjectStore:
    """A rooted view of a file:// or s3:// location."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.storage_options = storage_options or {}
        try:
            self.fs, self._root = url_to_fs(self.url, **self.storage_options)
        except (ValueError, ImportError) as e:
            raise StoreError(
                f"cannot open object store {url!r}: {e}; use file:///path or s3://bucket/prefix"
            ) from e
        if self.protocol == "file":
            Path(self._root).mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ObjectStore:
        """The store configured by LANDSTACK_STORE_URL and the LANDSTACK_S3_* settings."""
        s = settings or get_settings()
        return cls(s.store_url, s.storage_options())

    @property
    def protocol(self) -> str:
        proto = self.fs.protocol
        return proto[0] if isinstance(proto, tuple) else proto

    def href(self, key: str) -> str:
        """Absolute URL of a key (what STAC asset hrefs carry)."""
        return f"{self.url}/{key.lstrip('/')}"

    def path(self, key: str) -> str:
        """Filesystem path of a key for self.fs."""
        return posixpath.join(self._root, key.lstrip("/"))

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.path(key)))

    def list(self, prefix: str = "", suffix: str = "") -> list[str]:
        """Keys under a prefix (recursive), relative to the root."""
        base = self.path(prefix)
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        root = self._root.rstrip("/") + "/"
        keys = [f[len(root) :] if f.startswith(root) else f for f in found]
        return sorted(k for k in keys if k.endswith(suffix) and ".tmp-" not in k)

    def read_bytes(self, key: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self.path(key)))
        except FileNotFoundError as e:
            raise StoreError(f"{self.href(key)} does not exist") from e
        except OSError as e:
            raise StoreError(f"cannot read {self.href(key)}: {e}") from e

    def read_json(self, key: str) -> Any:
        try:
            return json.loads(self.read_bytes(key))
        except json.JSONDecodeError as e:
            raise StoreError(f"{self.href(key)} is not valid JSON: {e}") from e

    def put_bytes(self, key: str, data: bytes) -> str:
        """Write bytes atomically; returns the href."""
        with self.atomic_path(key) as tmp, self.fs.open(tmp, "wb") as f:
            f.write(data)
        return self.href(key)

    def put_json(self, key: str, doc: Any) -> str:
        return self.put_bytes(key, json.dumps(doc, indent=2).encode())

    def put_file(self, local_path: str | Path, key: str) -> str:
        """Upload a local file atomically; returns the href."""
        with self.atomic_path(key) as tmp:
            self.fs.put_file(str(local_path), tmp)
        return self.href(key)

    @contextlib.contextmanager
    def atomic_path(self, key: str) -> Iterator[str]:
        """A temporary path to write; moved onto `key` on success, removed on failure."""
        final = self.path(key)
        tmp = f"{final}.tmp-{uuid.uuid4().hex[:12]}"
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

    def open(self, key: str, mode: str = "rb") -> Any:
        return self.fs.open(self.path(key), mode)


def open_url(url: str, mode: str = "rb", settings: Settings | None = None) -> Any:
    """Open any file:// / s3:// / local URL with the configured S3 options."""
    s = settings or get_settings()
    opts = s.storage_options() if url.startswith("s3://") else {}
    return fsspec.open(url, mode, **opts)
