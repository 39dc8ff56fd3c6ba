"""Blending of class probabilities across production units.

Each unit is predicted over its core area plus a buffer (10 km), so neighbouring units overlap by
twice the buffer. A unit's weight falls linearly with the signed distance from its core border:
1 at `buffer` inside, 0.5 on the border (the centre of the overlap), 0 at `buffer` outside. Where
several units cover a pixel the weights are normalised to sum to 1, which also handles corners
where three or more units meet and arbitrary unit shapes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from landstack.pipelines.products.clcplus import decode_probabilities, encode_probabilities
from landstack.pipelines.products.errors import ShapeError
from landstack.pipelines.products.filters import SIGMA_COLOR, SIGMA_SPATIAL, WIN_SIZE, bilateral_filter

BUFFER_M = 10_000.0


def ramp(signed_distance: np.ndarray | float, buffer: float) -> np.ndarray:
    """Linear weight of a unit at a signed distance from its core border (positive inside)."""
    return np.clip(0.5 + np.asarray(signed_distance, np.float64) / (2.0 * buffer), 0.0, 1.0)


def signed_distance(core: np.ndarray, pixel_size: float = 1.0) -> np.ndarray:
    """Distance of each pixel centre from the border of `core` (H, W bool), positive inside.

    The border runs along pixel edges, so the pixels either side of it are half a pixel away.
    """
    core = np.asarray(core, bool)
    if core.all():
        return np.full(core.shape, np.inf)
    if not core.any():
        return np.full(core.shape, -np.inf)
    inside = ndimage.distance_transform_edt(core)
    outside = ndimage.distance_transform_edt(~core)
    return (np.where(core, inside - 0.5, -(outside - 0.5)) * pixel_size).astype(np.float64)


def unit_weights(
    cores: Sequence[np.ndarray],
    buffer: float = BUFFER_M,
    pixel_size: float = 10.0,
    available: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Blending weights (K, H, W) float32 of K units from their core masks.

    `available[k]` (optional) marks where unit k actually has predictions (its buffered footprint
    minus its no-data); weights are zero elsewhere and the remaining ones are renormalised, so they
    sum to 1 wherever at least one unit has data and are all 0 where none has.
    """
    if not cores:
        raise ShapeError("no production unit cores given: pass one boolean mask per unit")
    shape = np.shape(cores[0])
    weights = np.empty((len(cores), *shape), np.float32)
    for k, core in enumerate(cores):
        if np.shape(core) != shape:
            raise ShapeError(f"core mask {k} has shape {np.shape(core)}, the first has {shape}")
        w = ramp(signed_distance(core, pixel_size), buffer)
        if available is not None:
            w = w * np.asarray(available[k], bool)
        weights[k] = w
    total = weights.sum(axis=0)
    np.divide(weights, total, out=weights, where=total > 0)
    weights[:, total <= 0] = 0.0
    return weights


def blend_encoded(
    units: Sequence[np.ndarray],
    weights: np.ndarray,
    *,
    win_size: int = WIN_SIZE,
    sigma_spatial: float = SIGMA_SPATIAL,
    sigma_color: float = SIGMA_COLOR,
) -> np.ndarray:
    """Filter each unit's encoded probabilities (uint8 C, H, W), then blend them: the production order.

    Each unit's no-data pixels lose their weight (the others are renormalised); the result is
    encoded the same way, with nodata where no unit has data. Feed it to
    `clcplus.clcplus_layers(..., filter_inputs=False)`.
    """
    decoded = [decode_probabilities(u) for u in units]
    weights = weights * np.stack([valid for _, valid in decoded]).astype(np.float32)
    total = weights.sum(axis=0)
    np.divide(weights, total, out=weights, where=total > 0)
    filtered = [
        bilateral_filter(p, v, win_size=win_size, sigma_spatial=sigma_spatial, sigma_color=sigma_color)
        for p, v in decoded
    ]
    return encode_probabilities(blend(filtered, weights), total > 0)


def blend(probs: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Weighted mean of K units' probabilities (each C, H, W) with weights (K, H, W): (C, H, W)."""
    if len(probs) != weights.shape[0]:
        raise ShapeError(f"{len(probs)} probability arrays but {weights.shape[0]} weight layers")
    out = np.zeros(probs[0].shape, np.float32)
    for k, p in enumerate(probs):
        if p.shape[1:] != weights.shape[1:]:
            raise ShapeError(f"unit {k}'s probabilities {p.shape} do not match the weights {weights.shape}")
        wk = weights[k]
        # a unit's no-data (NaN) only matters where it has weight
        out += np.where(wk > 0, np.nan_to_num(p.astype(np.float32)) * wk, 0.0)
    return out
