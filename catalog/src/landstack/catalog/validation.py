"""Offline validation of STAC items, collections and catalogs against JSON schemas on disk.

Nothing is fetched from the network: every schema (STAC core, the extensions a document declares,
GeoJSON, PROJJSON) is read from a local folder laid out as

    <dir>/core-v1.0.0/...                      STAC 1.0.0 core
    <dir>/core-v1.1.0-and-geojson-from-pystac  STAC 1.1.0 core and GeoJSON
    <dir>/extensions/<name>/<tag>/json-schema/schema.json
    <dir>/../projjson/schemas/<version>/projjson.schema.json

and registered under its `$id`. Without such a folder only the core schemas bundled with pystac
are available: extensions are then reported as not checked, never silently passed.

Publishing validates every item, so valid documents take a compiled fast path (fastjsonschema,
when installed); only a document it rejects is validated again with jsonschema, which is the
reference and gives the complete, located error messages.
"""

from __future__ import annotations

import functools
import importlib
import json
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import ValidationError
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

from landstack.catalog.errors import CatalogError

_fastjsonschema: Any
try:
    _fastjsonschema = importlib.import_module("fastjsonschema")
except ImportError:  # pragma: no cover - optional accelerator
    _fastjsonschema = None

_REPO_ROOT = Path(__file__).resolve().parents[4]
_CORE_URL = "https://schemas.stacspec.org/v{version}/{kind}-spec/json-schema/{kind}.json"
_KINDS = {"Feature": "item", "Collection": "collection", "Catalog": "catalog"}
_MAX_ERRORS = 5


class StacValidationError(CatalogError):
    """A STAC document does not validate; names the document and what is wrong."""


class SchemaNotFoundError(StacValidationError):
    """A schema a document refers to is not in the offline schema folder."""


@dataclass
class ValidationResult:
    """Outcome of validating one STAC document."""

    id: str
    kind: str
    errors: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    note: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def reason(self) -> str:
        """The errors as one line (what a report shows next to the id)."""
        return "; ".join(self.errors)


def default_schemas_dir() -> Path | None:
    """../shared/schemas/stac beside the repository, when it exists."""
    candidate = _REPO_ROOT.parent / "shared" / "schemas" / "stac"
    return candidate if candidate.is_dir() else None


def _pystac_schemas_dir() -> Path | None:
    try:
        import pystac.validation
    except ImportError:  # pragma: no cover - pystac is a dependency
        return None
    folder = Path(pystac.validation.__file__).parent / "jsonschemas"
    return folder if folder.is_dir() else None


def _json_files(roots: Iterable[Path]) -> Iterator[Path]:
    for root in roots:
        for path in sorted(root.rglob("*.json")):
            # examples are STAC documents, not schemas
            if "examples" not in path.parts and not any(p.endswith("-examples") for p in path.parts):
                yield path


def _extension_url(path: Path) -> str | None:
    # extensions/<name>/<tag>/json-schema/schema.json has the URL .../<name>/<tag>/schema.json
    parts = path.parts
    if len(parts) >= 5 and parts[-2] == "json-schema" and "extensions" in parts:
        name, tag = parts[-4], parts[-3]
        return f"https://stac-extensions.github.io/{name}/{tag}/{parts[-1]}"
    return None


def _build_registry(roots: list[Path]) -> tuple[Registry, int]:
    resources: list[tuple[str, Resource[Any]]] = []
    for path in _json_files(roots):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or not ("$schema" in doc or "$id" in doc):
            continue
        resource = Resource.from_contents(doc)
        urls = set()
        sid = str(doc.get("$id", "")).rstrip("#")
        if sid:
            urls.add(sid)
            # Some published $ids are misspelt (e.g. ".../commonjson"): also register the file name.
            urls.add(posixpath.join(posixpath.dirname(sid), path.name))
        ext = _extension_url(path)
        if ext:
            urls.add(ext)
        resources.extend((u, resource) for u in urls)
    registry: Registry[Any] = Registry(retrieve=_refuse_network)  # type: ignore[call-arg]
    return registry.with_resources(resources), len(resources)


def _refuse_network(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


class StacValidator:
    """Validates STAC JSON against core and extension schemas from a local folder (no network)."""

    def __init__(self, schemas_dir: str | Path | None = None) -> None:
        folder = Path(schemas_dir) if schemas_dir else default_schemas_dir()
        if folder is not None and not folder.is_dir():
            raise CatalogError(
                f"STAC schema folder {folder} does not exist; set LANDSTACK_STAC_SCHEMAS_DIR to a folder "
                "with core-v1.*/ and extensions/<name>/<tag>/json-schema/schema.json"
            )
        roots: list[Path] = []
        self.note: str | None = None
        if folder is not None:
            roots.append(folder)
            projjson = folder.parent / "projjson"
            if projjson.is_dir():
                roots.append(projjson)
        else:
            bundled = _pystac_schemas_dir()
            if bundled is None:
                raise CatalogError("no STAC schemas available: set LANDSTACK_STAC_SCHEMAS_DIR")
            roots.append(bundled)
            self.note = (
                "no offline schema folder: validated against the core schemas bundled with pystac only; "
                "extensions were not checked (set LANDSTACK_STAC_SCHEMAS_DIR)"
            )
        self.schemas_dir = folder
        self.registry, self.schema_count = _build_registry(roots)
        self._validators: dict[str, Any] = {}
        self._compiled: dict[str, Any] = {}

    def _fast(self, url: str) -> Any:
        """A compiled validator for `url`, or None where it cannot be compiled."""
        if _fastjsonschema is None:
            return None
        if url not in self._compiled:
            try:
                self._compiled[url] = _fastjsonschema.compile(
                    self.registry.contents(url),
                    handlers={"https": self._handler, "http": self._handler},
                    use_formats=False,
                )
            except Exception:
                self._compiled[url] = None
        return self._compiled[url]

    def _handler(self, uri: str) -> Any:
        return self.registry.contents(uri.rstrip("#"))

    def _validator(self, url: str) -> Any:
        found = self._validators.get(url)
        if found is None:
            try:
                schema = self.registry.contents(url)
            except (NoSuchResource, Unresolvable, LookupError) as e:
                where = self.schemas_dir or "the schemas bundled with pystac"
                raise SchemaNotFoundError(
                    f"schema {url} is not available offline in {where}; add it to the schema folder "
                    "(extensions go to extensions/<name>/<tag>/json-schema/schema.json)"
                ) from e
            cls = validator_for(schema)
            found = cls(schema, registry=self.registry)
            self._validators[url] = found
        return found

    def validate(self, doc: dict[str, Any]) -> ValidationResult:
        """Validate a STAC item, collection or catalog; never raises for an invalid document."""
        doc_type = doc.get("type") if isinstance(doc, dict) else None
        kind = _KINDS.get(str(doc_type))
        result = ValidationResult(
            id=str(doc.get("id", "?")) if isinstance(doc, dict) else "?",
            kind=kind or "unknown",
            note=self.note,
        )
        if kind is None:
            result.errors.append(
                f"'type' is {doc_type!r}; a STAC document is a Feature, Collection or Catalog"
            )
            return result
        version = doc.get("stac_version")
        if not isinstance(version, str):
            result.errors.append("'stac_version' is missing; set it to the STAC version, e.g. '1.1.0'")
            return result
        urls = [_CORE_URL.format(version=version, kind=kind)]
        extensions = doc.get("stac_extensions") or []
        if not isinstance(extensions, list):
            result.errors.append("'stac_extensions' must be a list of schema URLs")
            return result
        urls.extend(str(u) for u in extensions)
        for i, url in enumerate(urls):
            fast = self._fast(url) if url in self._validators or self._known(url) else None
            if fast is not None:
                try:
                    fast(doc)
                    result.checked.append(url)
                    continue
                except _fastjsonschema.JsonSchemaException:
                    pass  # validated again below for the complete messages
                except Exception:
                    pass
            try:
                validator = self._validator(url)
            except SchemaNotFoundError as e:
                if i > 0 and self.schemas_dir is None:
                    result.unchecked.append(url)
                else:
                    result.errors.append(str(e))
                continue
            try:
                errors = sorted(validator.iter_errors(doc), key=lambda err: list(err.absolute_path))
            except (Unresolvable, NoSuchResource) as e:
                result.errors.append(f"schema {url} refers to a schema that is not available offline: {e}")
                continue
            result.checked.append(url)
            for err in errors[:_MAX_ERRORS]:
                result.errors.append(f"{_label(url, i)}: {_describe(err)}")
            if len(errors) > _MAX_ERRORS:
                result.errors.append(f"{_label(url, i)}: {len(errors) - _MAX_ERRORS} more errors")
        return result

    def _known(self, url: str) -> bool:
        try:
            self.registry.contents(url)
        except (NoSuchResource, Unresolvable, LookupError):
            return False
        return True

    def check(self, doc: dict[str, Any]) -> ValidationResult:
        """Validate and raise StacValidationError naming the document when it is invalid."""
        result = self.validate(doc)
        if not result.ok:
            raise StacValidationError(f"STAC {result.kind} {result.id!r} is invalid: {result.reason()}")
        return result


def _label(url: str, index: int) -> str:
    return "core" if index == 0 else url


def _describe(err: ValidationError) -> str:
    where = "/".join(str(p) for p in err.absolute_path) or "<root>"
    # anyOf/oneOf errors hide the useful message in the deepest context
    best = err
    while best.context:
        best = min(best.context, key=lambda e: len(list(e.absolute_path)) * -1)
        where = "/".join(str(p) for p in best.absolute_path) or where
    message = best.message if len(best.message) <= 300 else best.message[:300] + "…"
    if best.validator == "not" and best.validator_value == {}:
        # `"not": {}` is how the STAC schemas forbid a field under a condition
        field_name = str(best.absolute_path[-1]) if best.absolute_path else where
        message = f"{field_name!r} is not allowed here"
        if field_name == "collection":
            message += "; an item with 'collection' needs a link with rel 'collection'"
        elif field_name == "bbox":
            message += "; an item without geometry must not have a bbox"
    return f"at {where}: {message}"


@functools.cache
def _cached(schemas_dir: str | None) -> StacValidator:
    return StacValidator(schemas_dir)


def get_validator(schemas_dir: str | Path | None = None) -> StacValidator:
    """A process-wide validator for a schema folder (schemas are read once)."""
    return _cached(str(schemas_dir) if schemas_dir else None)


def validate_stac(doc: dict[str, Any], schemas_dir: str | Path | None = None) -> ValidationResult:
    """Validate one STAC document offline (see StacValidator)."""
    return get_validator(schemas_dir).validate(doc)
