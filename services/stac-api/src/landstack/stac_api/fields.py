"""The fields extension of item search, applied to the items the search returns.

stac-fastapi-pgstac 7.2 reads `include: null` or `[]` like a missing `include` and keeps nested
properties only when nothing else is excluded around them. The rules implemented here, for POST
bodies and GET lists alike:

- no field at all (`{}`, `fields=`, null or empty include and exclude): the default set
  (`type`, `stac_version`, `id`, `geometry`, `bbox`, `links`, `assets`, the datetime properties);
- only `exclude` (no `include` key): every field of the item but the excluded ones;
- `exclude` with `include` null or `[]`: the default set without the excluded fields;
- `include` given: the included fields, plus `type`, `id` and `collection` so the result stays
  a GeoJSON Feature a client can identify, plus `links`; a field in both lists is included and
  an excluded parent (`properties`) keeps its included children (`properties.eo:cloud_cover`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_FIELDS = frozenset(
    {
        "type",
        "stac_version",
        "id",
        "geometry",
        "bbox",
        "links",
        "assets",
        "properties.datetime",
        "properties.start_datetime",
        "properties.end_datetime",
    }
)
IDENTITY_FIELDS = frozenset({"type", "id", "collection", "links"})


def _covers(parent: str, path: str) -> bool:
    """True when `path` is `parent` or lies inside it."""
    return path == parent or path.startswith(parent + ".")


@dataclass(frozen=True)
class FieldsSpec:
    """Resolved include/exclude paths; an empty `include` means every field of the item."""

    include: frozenset[str]
    exclude: frozenset[str]

    @classmethod
    def resolve(cls, include: list[str] | None, exclude: list[str] | None, include_given: bool) -> FieldsSpec:
        """The spec for an `include`/`exclude` pair; `include_given` is whether the key was sent."""
        inc = {f.strip() for f in include or [] if f and f.strip()}
        exc = {f.strip() for f in exclude or [] if f and f.strip()}
        if not inc and not exc:
            return cls(DEFAULT_FIELDS, frozenset())
        if not inc:
            if not include_given:
                return cls(frozenset(), frozenset(exc))
            kept = {d for d in DEFAULT_FIELDS if not any(_covers(e, d) for e in exc)}
            return cls(frozenset(kept), frozenset(exc))
        inc |= {f for f in IDENTITY_FIELDS if f not in exc}
        # Include wins over exclude, also over an excluded parent of an included field.
        exc = {e for e in exc if not any(_covers(e, i) for i in inc)}
        return cls(frozenset(inc), frozenset(exc))

    @classmethod
    def from_post(cls, body: Any) -> FieldsSpec | None:
        """The spec of a POST search body, or None when it has no `fields`."""
        if not isinstance(body, dict) or not isinstance(body.get("fields"), dict):
            return None
        fields = body["fields"]
        return cls.resolve(fields.get("include"), fields.get("exclude"), "include" in fields)

    @classmethod
    def from_get(cls, values: list[str] | None) -> FieldsSpec | None:
        """The spec of a GET `fields` list (`+a`/`a` include, `-b` exclude), None when not given."""
        if values is None:
            return None
        include = [v.lstrip("+") for v in values if v and not v.startswith("-")]
        exclude = [v[1:] for v in values if v.startswith("-")]
        return cls.resolve(include, exclude, include_given=bool(include))

    def apply(self, item: dict[str, Any]) -> dict[str, Any]:
        """A filtered copy of `item` (the item itself is left untouched)."""
        if self.include:
            out: dict[str, Any] = {}
            for path in sorted(self.include):
                _copy_path(item, out, path.split("."))
        else:
            out = dict(item)
        for path in self.exclude:
            _drop_path(out, path.split("."))
        return out


def _copy_path(src: dict[str, Any], dst: dict[str, Any], parts: list[str]) -> None:
    key = parts[0]
    if key not in src:
        return
    if len(parts) == 1:
        dst[key] = src[key]
        return
    if not isinstance(src[key], dict) or dst.get(key) is src[key]:
        return  # not an object, or the whole parent is already included
    if not isinstance(dst.get(key), dict):
        dst[key] = {}
    _copy_path(src[key], dst[key], parts[1:])


def _drop_path(obj: dict[str, Any], parts: list[str]) -> None:
    key = parts[0]
    if key not in obj:
        return
    if len(parts) == 1:
        del obj[key]
        return
    if not isinstance(obj[key], dict):
        return
    obj[key] = dict(obj[key])  # copy before changing: the dict may be shared with the source item
    _drop_path(obj[key], parts[1:])
    if not obj[key]:
        del obj[key]
