"""How each product layer is drawn: its colour map from the catalogue.

Classified layers (thematic, masks) and 8-bit continuous layers use the catalogue's palette as
is (`landstack.catalog.symbology.colormap`: class colours, and the ramp expanded per value).
Wider continuous layers (built-up m² in uint16/uint32) get the ramp as value intervals over the
layer's range, so no rescale is needed and the class codes (nodata) keep their own colours.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import numpy as np

from landstack.catalog import CatalogError, LayerSpec, get_layer
from landstack.catalog.symbology import colormap
from landstack.tiler.errors import UnknownLayerError

RGBA = tuple[int, int, int, int]
_STEPS = 64


def layer_of(collection_id: str) -> LayerSpec:
    """The catalogue layer of a collection id."""
    try:
        return get_layer(collection_id)[1]
    except (CatalogError, KeyError, ValueError) as e:
        raise UnknownLayerError(
            f"{collection_id!r} is not a product layer of the catalogue; use one of `landstack catalog list`"
        ) from e


def is_classified(layer: LayerSpec) -> bool:
    """True for layers whose pixels are class codes (area per class makes sense)."""
    return layer.kind in ("thematic", "mask")


def _hex(c: str) -> RGBA:
    h = c.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255


def _intervals(layer: LayerSpec) -> list[tuple[tuple[float, float], RGBA]]:
    assert layer.ramp is not None and layer.value_range is not None
    lo, hi = layer.value_range
    stops = sorted(layer.ramp.stops)
    xs = [s[0] for s in stops]
    rgb = np.array([_hex(s[1])[:3] for s in stops], dtype=float)
    edges = np.linspace(lo, hi + 1, _STEPS + 1)
    out: list[tuple[tuple[float, float], RGBA]] = []
    codes = {c.value: c for c in layer.classes}
    for code, cls in sorted(codes.items()):
        r, g, b, _ = _hex(cls.color)
        out.append(((float(code), float(code) + 1), (r, g, b, 0 if cls.nodata else 255)))
    for a, b in itertools.pairwise(edges):
        mid = (a + b) / 2
        r, g, bl = (round(float(np.interp(mid, xs, rgb[:, k]))) for k in range(3))
        # rio-tiler intervals are [min, max); class codes listed first win where they overlap
        out.append(((float(a), float(b)), (r, g, bl, 255)))
    return out


@functools.cache
def layer_colormap(collection_id: str) -> Any:
    """The colour map titiler applies to a layer: {value: RGBA} or [((min, max), RGBA), ...]."""
    layer = layer_of(collection_id)
    if layer.dtype == "uint8" or layer.ramp is None or layer.value_range is None:
        return colormap(layer)
    return _intervals(layer)


def legend(collection_id: str) -> dict[str, Any]:
    """What the web map shows as legend: classes (value, name, colour) and/or a ramp with its range."""
    layer = layer_of(collection_id)
    out: dict[str, Any] = {
        "id": collection_id,
        "title": layer.title,
        "kind": layer.kind,
        "classified": is_classified(layer),
        "unit": layer.unit,
        "nodata": layer.nodata,
        "classes": [
            {"value": c.value, "name": c.name, "color": c.color, "nodata": c.nodata} for c in layer.classes
        ],
    }
    if layer.ramp is not None and layer.value_range is not None:
        out["ramp"] = {"range": list(layer.value_range), "stops": [[v, c] for v, c in layer.ramp.stops]}
    return out
