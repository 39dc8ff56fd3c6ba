"""CISC style impervious surface classes at 30 m and their valid-data mask.

The 4-class map (bare/other, impervious, vegetation, water) is aggregated from 10 m by majority of
the valid 10 m pixels in each 3 x 3 block; ties go to the class listed first in `priority`
(impervious first by default, the product's focus), so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from landstack.pipelines.products import codes
from landstack.pipelines.products.errors import ShapeError, SpecMismatchError


def _class_codes() -> dict[str, int]:
    spec = codes.layer(codes.CISC_CLASSES)
    return {
        "bare": codes.code(spec, "Bare land or other"),
        "impervious": codes.code(spec, "Impervious surface"),
        "vegetation": codes.code(spec, "Vegetation"),
        "water": codes.code(spec, "Water"),
    }


def default_priority() -> tuple[int, ...]:
    """Tie-break order: impervious, water, vegetation, bare/other."""
    c = _class_codes()
    return (c["impervious"], c["water"], c["vegetation"], c["bare"])


@dataclass
class CiscLayers:
    """The CISC classes and valid mask of one tile at 30 m."""

    classes: np.ndarray
    valid_mask: np.ndarray


def majority(
    classes_10m: np.ndarray,
    factor: int = 3,
    priority: Sequence[int] | None = None,
    min_valid: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Majority class of each `factor` x `factor` block and the number of valid pixels in it.

    Pixels holding the classes layer's nodata do not vote; blocks with fewer than `min_valid`
    valid pixels get nodata. Returns (classes uint8, valid counts).
    """
    spec = codes.layer(codes.CISC_CLASSES)
    order = list(priority or default_priority())
    thematic = set(codes.thematic_codes(spec))
    if set(order) != thematic:
        raise SpecMismatchError(f"priority {order} must list each CISC class {sorted(thematic)} once")
    h, w = classes_10m.shape
    if h % factor or w % factor:
        raise ShapeError(f"a {h} x {w} grid does not divide into {factor} x {factor} blocks; crop or pad it")
    unknown = np.setdiff1d(np.unique(classes_10m), [*order, spec.nodata])
    if unknown.size:
        raise SpecMismatchError(f"10 m classes hold {unknown.tolist()}, not CISC codes {sorted(thematic)}")
    blocks = classes_10m.reshape(h // factor, factor, w // factor, factor)
    counts = np.stack([(blocks == c).sum(axis=(1, 3)) for c in order])  # (K, h, w), priority order
    best = np.asarray(order, np.uint8)[np.argmax(counts, axis=0)]  # argmax keeps the first of ties
    n_valid = counts.sum(axis=0)
    best[n_valid < min_valid] = int(spec.nodata)
    return best, n_valid


def cisc_layers(
    classes_10m: np.ndarray,
    inside: np.ndarray | None = None,
    factor: int = 3,
    min_valid: int = 5,
    priority: Sequence[int] | None = None,
) -> CiscLayers:
    """CISC classes and valid mask at 30 m from a 10 m 4-class map.

    A 30 m pixel is valid when at least `min_valid` of its 10 m pixels are; `inside` (30 m grid,
    optional) marks the production area, outside of which both layers hold their nodata.
    """
    cls_spec, mask_spec = codes.layer(codes.CISC_CLASSES), codes.layer(codes.CISC_VALID)
    classes, n_valid = majority(classes_10m, factor, priority, min_valid=min_valid)
    valid = np.where(n_valid >= min_valid, codes.code(mask_spec, "Valid"), codes.code(mask_spec, "Invalid"))
    valid = valid.astype(codes.np_dtype(mask_spec))
    if inside is not None:
        if inside.shape != classes.shape:
            raise ShapeError(f"production area {inside.shape} is not on the 30 m grid {classes.shape}")
        classes[~inside] = int(cls_spec.nodata)
        valid[~inside] = int(mask_spec.nodata)
    return CiscLayers(classes, valid)
