"""Blending of production units block by block, equal to blending the whole tile at once.

A unit's weight depends on its signed distance from its core border, but only within `buffer` of
it (the ramp is flat beyond), so a block's weights need the unit masks of the block plus a halo
of ``ceil(buffer / pixel + 0.5)`` pixels; the bilateral filter before blending needs a halo of its
radius. Each block therefore reads the (cheap, one byte per pixel) unit masks with the wide halo
and the probabilities with the narrow one, and memory follows the block size.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from rasterio.windows import Window

from landstack.pipelines.products import blending
from landstack.pipelines.products.errors import ShapeError
from landstack.pipelines.products.filters import SIGMA_COLOR, SIGMA_SPATIAL, WIN_SIZE
from landstack.pipelines.products.raster import windows
from landstack.pipelines.products.windowed import halo_slices


def weight_halo(buffer: float, pixel_size: float) -> int:
    """Pixels of halo beyond which a unit's blending weight no longer changes."""
    return math.ceil(buffer / pixel_size + 0.5)


def blend_blocks(
    units: Sequence[Any],
    masks: Sequence[Any],
    *,
    block: int = 1024,
    pixel_size: float = 10.0,
    buffer: float = blending.BUFFER_M,
    win_size: int = WIN_SIZE,
    sigma_spatial: float = SIGMA_SPATIAL,
    sigma_color: float = SIGMA_COLOR,
    cores: blending.UnitCores | None = None,
) -> Iterator[tuple[Window, np.ndarray]]:
    """(window, blended encoded probabilities) of every block of a tile.

    `units`: each unit's encoded probabilities (C, H, W), sliceable (arrays or
    :class:`windowed.RasterView`); `masks`: each unit's valid footprint (H, W) bool, which is both
    its core and where it has data (as the postprocess step blends). The result equals
    ``blending.blend_encoded(units, blending.unit_weights(masks, buffer, pixel_size, masks))``.
    With `cores` (the units' cores around the tile, :func:`blending.production_cores`) the weights
    come from the cores and `masks` only say where each unit has data, as the production lines blend.
    """
    if not units or len(units) != len(masks):
        raise ShapeError(f"{len(units)} units and {len(masks)} masks: give one valid mask per unit")
    shape = (int(units[0].shape[1]), int(units[0].shape[2]))
    wide, narrow = weight_halo(buffer, pixel_size), win_size // 2
    for win in windows(shape, block):
        (wr, wc), _ = halo_slices(win, wide, shape)
        (nr, nc), (ir, ic) = halo_slices(win, narrow, shape)
        if cores is not None:
            window_weights = cores.weights(nr, nc, [np.asarray(m[nr, nc], bool) for m in masks])
        else:
            avail = [np.asarray(m[wr, wc], bool) for m in masks]
            weights = blending.unit_weights(avail, buffer=buffer, pixel_size=pixel_size, available=avail)
            # the narrow read inside the wide one
            sub = (
                slice(None),
                slice(nr.start - wr.start, nr.stop - wr.start),
                slice(nc.start - wc.start, nc.stop - wc.start),
            )
            window_weights = weights[sub]
        enc = [np.asarray(u[:, nr, nc]) for u in units]
        blended = blending.blend_encoded(
            enc,
            np.ascontiguousarray(window_weights),
            win_size=win_size,
            sigma_spatial=sigma_spatial,
            sigma_color=sigma_color,
        )
        yield win, blended[:, ir, ic]
