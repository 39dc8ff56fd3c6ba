"""Blending of class probabilities across production units.

Each unit is predicted over its core area plus a buffer (10 km), so neighbouring units overlap by
twice the buffer. A unit's weight falls linearly with the signed distance from its core border:
1 at `buffer` inside, 0.5 on the border (the centre of the overlap), 0 at `buffer` outside. Where
several units cover a pixel the weights are normalised to sum to 1, which also handles corners
where three or more units meet and arbitrary unit shapes.

The distances are measured from the units' cores, never from their buffered (predicted)
footprints: the footprint's edge is `buffer` outside the core, where the weight must reach 0, not
0.5. On a roll-out tile the cores come from the unit polygons rasterised with a margin of one
buffer around the tile (:func:`unit_cores`), so a pixel's weight does not depend on which tile it
is on and neighbouring tiles blend without a seam; the tile's unit index raster is the fallback
when the polygons are not known, exact only where the border lies on the tile.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from landstack.catalog.grid import TileGrid
from landstack.pipelines.products.clcplus import decode_probabilities, encode_probabilities
from landstack.pipelines.products.errors import ShapeError, SpecMismatchError
from landstack.pipelines.products.filters import SIGMA_COLOR, SIGMA_SPATIAL, WIN_SIZE, bilateral_filter
from landstack.storage import S3Options, gdal_env

log = logging.getLogger(__name__)

BUFFER_M = 10_000.0
FALLBACK = "fallback"  # the asset suffix of pixels outside every buffered unit
# prediction item properties written by the predict step (see steps/production.py)
UNITS_PROPERTY = "landstack:units"  # unit ids: value i of the `units` asset is entry i - 1
SOURCE_PROPERTY = "landstack:unit_source"  # URL of the unit polygons
BUFFER_PROPERTY = "landstack:unit_buffer_m"
ID_PROPERTY = "landstack:unit_property"


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


def _normalised(weights: np.ndarray) -> np.ndarray:
    total = weights.sum(axis=0)
    np.divide(weights, total, out=weights, where=total > 0)
    weights[:, total <= 0] = 0.0
    return weights


def unit_weights(
    cores: Sequence[np.ndarray],
    buffer: float = BUFFER_M,
    pixel_size: float = 10.0,
    available: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Blending weights (K, H, W) float32 of K units from their core masks.

    `available[k]` (optional) marks where unit k actually has predictions (its buffered footprint
    minus its no-data); weights are zero elsewhere and the remaining ones are renormalised, so they
    sum to 1 wherever at least one unit has data and are all 0 where none has. Core borders beyond
    the arrays are not seen: for a tile, use :class:`UnitCores`.
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
    return _normalised(weights)


@dataclass(frozen=True)
class UnitCores:
    """The production units' cores around one tile, from which any window's weights follow.

    `cores[k]` covers the tile plus `pad` pixels on every side, so core borders just beyond the
    tile's edges count too (pad 0: the tile only).
    """

    cores: list[np.ndarray]  # (H + 2 pad, W + 2 pad) bool per unit
    pad: int
    buffer: float
    pixel_size: float

    def weights(self, rows: slice, cols: slice, available: Sequence[np.ndarray]) -> np.ndarray:
        """Weights (K, h, w) of the tile window rows x cols, given where each unit has data there.

        Equal to the whole tile's weights on that window: only core borders within a buffer
        matter, and the window is read with that much halo.
        """
        halo = math.ceil(self.buffer / self.pixel_size + 0.5)
        ph, pw = self.cores[0].shape
        r0, r1 = max(rows.start + self.pad - halo, 0), min(rows.stop + self.pad + halo, ph)
        c0, c1 = max(cols.start + self.pad - halo, 0), min(cols.stop + self.pad + halo, pw)
        inner = (
            slice(rows.start + self.pad - r0, rows.stop + self.pad - r0),
            slice(cols.start + self.pad - c0, cols.stop + self.pad - c0),
        )
        h, w = rows.stop - rows.start, cols.stop - cols.start
        out = np.empty((len(self.cores), h, w), np.float32)
        for k, core in enumerate(self.cores):
            if np.shape(available[k]) != (h, w):
                raise ShapeError(
                    f"available mask {k} has shape {np.shape(available[k])}, the window {(h, w)}"
                )
            d = signed_distance(core[r0:r1, c0:c1], self.pixel_size)[inner]
            out[k] = ramp(d, self.buffer) * np.asarray(available[k], bool)
        return _normalised(out)


def unit_cores(
    url: str,
    grid: TileGrid,
    buffer: float,
    units: Sequence[str],
    s3: S3Options | None = None,
    id_property: str = "unit",
) -> UnitCores:
    """The cores of `units` from the unit polygons at `url`, on `grid` grown by the buffer.

    The margin is the buffer in pixels plus one: every core border within a buffer of the tile is
    on it, which is all the weights depend on. A pixel belongs to the first unit whose polygon
    holds its centre (as the predict step assigns them); the `fallback` unit's core is what no
    unit holds.
    """
    from rasterio.features import rasterize
    from rasterio.transform import Affine
    from rasterio.warp import transform_geom

    from landstack.pipelines.inference.units import read_units

    polygons, crs = read_units(url, s3, id_property)
    pad = math.ceil(buffer / grid.resolution) + 1
    shape = (grid.height + 2 * pad, grid.width + 2 * pad)
    transform = grid.transform * Affine.translation(-pad, -pad)
    owner = np.zeros(shape, np.uint16)  # 0 = no unit, i = the i-th distinct unit id
    ids: list[str] = []
    for unit, geom in polygons:
        if unit not in ids:
            ids.append(unit)
        g = geom if crs == grid.crs else transform_geom(crs, grid.crs, geom)
        mask = rasterize([(g, 1)], out_shape=shape, transform=transform, fill=0, dtype="uint8").astype(bool)
        owner[(owner == 0) & mask] = ids.index(unit) + 1
    missing = sorted(set(units) - {*ids, FALLBACK})
    if missing:
        raise SpecMismatchError(
            f"production units {missing} have predictions but no polygon in {url} (it holds {ids}); "
            "post-process with the unit polygons the predictions were made with"
        )
    cores = [owner == (0 if u == FALLBACK else ids.index(u) + 1) for u in units]
    return UnitCores(cores, pad, buffer, grid.resolution)


def _index_cores(doc: Mapping[str, Any], units: Sequence[str], s3: S3Options | None) -> list[np.ndarray]:
    """Core masks of `units` from the prediction item's `units` index raster (the tile only)."""
    import rasterio

    names = list(doc.get("properties", {}).get(UNITS_PROPERTY, []))
    missing = sorted(set(units) - {*names, FALLBACK})
    if missing or "units" not in doc.get("assets", {}):
        raise SpecMismatchError(
            f"prediction item {doc.get('id')!r} has predictions of units {list(units)} but neither the unit "
            f"polygons ({SOURCE_PROPERTY}) nor a units asset naming {missing or list(units)}; "
            "predict the tile again with the predict step's `units`"
        )
    with gdal_env(s3), rasterio.open(doc["assets"]["units"]["href"]) as ds:
        index = ds.read(1)
    return [index == (0 if u == FALLBACK else names.index(u) + 1) for u in units]


def production_cores(
    doc: Mapping[str, Any], units: Sequence[str], grid: TileGrid, s3: S3Options | None = None
) -> UnitCores:
    """The cores of a prediction item's production units around its tile (`grid`).

    `units` are the unit ids of its predictions (the suffix of their `<family>-<unit>` asset
    keys). The buffer and the unit polygons are those the predict step recorded in the item;
    without the polygons the cores come from the item's unit index raster, which cannot see a core
    border beyond the tile's edge (logged).
    """
    props = doc.get("properties", {})
    buffer = float(props.get(BUFFER_PROPERTY, BUFFER_M))
    source = props.get(SOURCE_PROPERTY)
    if source:
        return unit_cores(str(source), grid, buffer, units, s3, str(props.get(ID_PROPERTY, "unit")))
    log.warning(
        "prediction item %s does not name its unit polygons: blending weights from the tile's unit "
        "index, so unit borders beyond the tile's edge are not seen",
        doc.get("id"),
    )
    return UnitCores(_index_cores(doc, units, s3), 0, buffer, grid.resolution)


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
