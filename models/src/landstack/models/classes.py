"""Class codes and names, read from the product catalogue."""

from __future__ import annotations

from typing import Any

import numpy as np

from landstack.catalog import get_layer

LAND_COVER_LAYER = "clcplus-backbone-ras"
IMPERVIOUS_CLASSES_LAYER = "cisc-classes"


def catalogue_classes(layer_id: str) -> list[dict[str, Any]]:
    """Non-nodata classes of a catalogue layer as [{value, name, color}] (only the 'real' classes)."""
    _, layer = get_layer(layer_id)
    return [
        {"value": int(c.value), "name": c.name, "color": c.color}
        for c in layer.classes
        if not c.nodata and c.value < 250
    ]


def classes_for_labels(labels: np.ndarray, layer_id: str | None = None) -> list[dict[str, Any]]:
    """Class list for a set of training labels.

    With `layer_id` the catalogue's classes that occur in the labels; otherwise the land-cover
    layer when every code is in 1..11, the impervious classes when every code is in 0..3, and
    bare codes ("class <n>") for anything else.
    """
    codes = sorted(int(v) for v in np.unique(labels))
    if layer_id is None:
        if set(codes) <= set(range(1, 12)):
            layer_id = LAND_COVER_LAYER
        elif set(codes) <= set(range(4)):
            layer_id = IMPERVIOUS_CLASSES_LAYER
    named = {c["value"]: c for c in catalogue_classes(layer_id)} if layer_id else {}
    return [named.get(code, {"value": code, "name": f"class {code}", "color": None}) for code in codes]
