"""Pixel codes of the product layers, read from the catalogue's specs.

Every algorithm takes its class codes, nodata and value ranges from here, so a code is declared
once (in the spec YAML) and never repeated in the algorithms.
"""

from __future__ import annotations

import numpy as np

from landstack.catalog.products import get_layer
from landstack.catalog.spec import LayerSpec
from landstack.pipelines.products.errors import SpecMismatchError

CLCPLUS_RAS = "clcplus-backbone-ras"
CLCPLUS_RASCL = "clcplus-backbone-rascl"
CLCPLUS_RASDL = "clcplus-backbone-rasdl"
CLCPLUS_RASPL = "clcplus-backbone-raspl"
HRL_IMD = "hrl-imperviousness-imd"
HRL_SEALING = "hrl-imperviousness-sealing-mask"
HRL_CHANGE = "hrl-imperviousness-change"
CISC_CLASSES = "cisc-classes"
CISC_VALID = "cisc-valid-mask"

# Names of the technical codes, as the specs spell them.
OUTSIDE = "Outside area"
NO_DATA = "No data"
COASTAL = "Coastal seawater buffer"


def layer(collection_id: str) -> LayerSpec:
    """The layer spec behind a collection id."""
    return get_layer(collection_id)[1]


def code(spec: LayerSpec, name: str) -> int:
    """The pixel value of the class called `name` (case-insensitive) in a layer."""
    for cls in spec.classes:
        if cls.name.lower() == name.lower():
            return int(cls.value)
    known = ", ".join(f"{c.value}={c.name!r}" for c in spec.classes)
    raise SpecMismatchError(f"layer {spec.id} has no class named {name!r}; its classes are {known}")


def thematic_codes(spec: LayerSpec) -> list[int]:
    """Codes of the real classes, without nodata and the technical codes (253 and up in RAS)."""
    technical = {COASTAL.lower(), OUTSIDE.lower(), NO_DATA.lower(), "unclassifiable"}
    return [
        int(c.value)
        for c in spec.classes
        if not c.nodata and c.name.lower() not in technical and c.value != spec.nodata
    ]


def declared_codes(spec: LayerSpec) -> np.ndarray:
    """The class codes and nodata a layer declares (without its value range)."""
    return np.array(sorted({int(c.value) for c in spec.classes} | {int(spec.nodata)}), dtype=np.int64)


def check_codes(spec: LayerSpec, array: np.ndarray) -> None:
    """Raise if `array` holds any value the layer's spec does not declare.

    Declared are the class codes, nodata and, for continuous layers, every value of value_range.
    """
    values = np.unique(array)
    outside = ~np.isin(values, declared_codes(spec))
    if spec.value_range is not None:
        lo, hi = spec.value_range
        outside &= (values < lo) | (values > hi) | (values != np.round(values))
    found = values[outside]
    if found.size:
        raise SpecMismatchError(
            f"layer {spec.id} would hold values {found[:10].tolist()} that its spec does not declare; "
            f"allowed: the class codes, value_range {spec.value_range} and nodata {spec.nodata}"
        )


def np_dtype(spec: LayerSpec) -> np.dtype:
    """The numpy dtype of a layer."""
    return np.dtype(spec.dtype)
