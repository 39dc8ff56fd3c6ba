"""Releases: the set of registered models one model server serves together, as one folder.

A training run with production units registers one model per unit (``<name>-<unit>``) and the
fallback (``<name>-fallback``), each under its own ``models/<member>/<version>/``. An
InferenceService loads one folder (KServe's storage initializer copies its storage URI to
/mnt/models), so a release gathers the members into one::

    releases/<name>/<release>/<member>/...   a copy of models/<member>/<version>/ (model.pt, item.json, ...)
    releases/<name>/<release>/release.json   {"name", "version", "created", "members": [{"name", "version"}]}

The release id is a hash of the members' names and versions, so registering the same set again
gives the same folder. Every object is written atomically (temporary key, then moved) and the
manifest last: a folder without ``release.json`` is incomplete and is never served.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from landstack.models.errors import RegistryError
from landstack.models.registry import Root, _registry_io, _store
from landstack.storage import S3Options
from landstack.storage.layout import RELEASE_MANIFEST, model_prefix, release_prefix

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Member:
    """One registered model version inside a release (served under its registry name)."""

    name: str
    version: str


@dataclass
class Release:
    """Where a release lives and what it holds."""

    name: str
    version: str
    members: list[Member]
    url: str  # the release folder, with a trailing slash (an InferenceService's storage URI)


def release_id(members: list[Member]) -> str:
    """The id of a set of members: equal sets (in any order) give equal ids."""
    text = json.dumps(sorted([m.name, m.version] for m in members))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _check_members(name: str, members: list[Member]) -> None:
    if not members:
        raise RegistryError(f"release {name!r} has no members; register at least one model first")
    seen: set[str] = set()
    for m in members:
        if not (_NAME.match(m.name) and _NAME.match(m.version)):
            raise RegistryError(
                f"release {name!r}: member {m.name!r} version {m.version!r} is not a registry name and "
                "version (letters, digits, '.', '_', '-')"
            )
        if m.name in seen:
            raise RegistryError(
                f"release {name!r} lists model {m.name!r} twice; one server serves one version per name"
            )
        seen.add(m.name)


def register_release(root: Root, name: str, members: list[Member], s3: S3Options | None = None) -> Release:
    """Copy each member's registered version folder into ``releases/<name>/<id>/`` and write the manifest."""
    _check_members(name, members)
    store = _store(root, s3)
    version = release_id(members)
    prefix = release_prefix(name, version)
    manifest_key = f"{prefix}/{RELEASE_MANIFEST}"
    url = store.href(prefix).rstrip("/") + "/"
    with _registry_io():
        if store.exists(manifest_key):  # the same members were released before (ids are content hashes)
            return Release(name, version, list(members), url)
    for m in members:
        source = model_prefix(m.name, m.version)
        with _registry_io(f"; register model {m.name!r} version {m.version!r} first"):
            keys = store.list(source)
            if f"{source}/model.pt" not in keys:
                raise RegistryError(
                    f"{store.href(source)}/ holds no model.pt; register model {m.name!r} version "
                    f"{m.version!r} before releasing it"
                )
            for key in keys:
                store.put_bytes(f"{prefix}/{m.name}/{key[len(source) + 1 :]}", store.read_bytes(key))
    doc = {
        "name": name,
        "version": version,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "members": [{"name": m.name, "version": m.version} for m in members],
    }
    with _registry_io():
        store.put_json(manifest_key, doc)
    return Release(name, version, list(members), url)


def read_manifest(folder: Path) -> tuple[str, str, list[Member]]:
    """Name, id and members of a release folder on local disk (as /mnt/models holds it).

    Every member's folder must hold its ``model.pt``; errors say what to copy again.
    """
    path = folder / RELEASE_MANIFEST
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
        name, version = str(doc["name"]), str(doc["version"])
        members = [Member(str(m["name"]), str(m["version"])) for m in doc["members"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RegistryError(
            f"{path} is not a release manifest ({type(e).__name__}: {e}); copy the whole release "
            "folder releases/<name>/<release>/ again"
        ) from e
    _check_members(name, members)
    missing = [m.name for m in members if not (folder / m.name / "model.pt").is_file()]
    if missing:
        raise RegistryError(
            f"release folder {folder} lacks the model.pt of {missing}; copy the whole release folder "
            f"releases/{name}/{version}/ again"
        )
    return name, version, members
