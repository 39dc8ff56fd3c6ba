"""The CLCplus Backbone layers of one roll-out tile, streamed block by block from its predictions.

Pass 0 stages the probabilities the layers start from (the unit's own or, with several production
units, their filtered blend, :mod:`blend_blocks`) in a local tiled file; :mod:`clcplus_blocks` then
reads it block by block, twice with a previous year (change thresholds, then layers). The sea mask
and correction areas are rasterised window by window.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from landstack.catalog.grid import TileGrid
from landstack.pipelines.errors import BadInputError
from landstack.pipelines.products import clcplus, codes, cog
from landstack.pipelines.products.intermediates import (
    FAMILY_LAYERS,
    PROBABILITIES,
    PostprocessOptions,
    TileContext,
    family_assets,
)
from landstack.pipelines.products.raster import windows
from landstack.pipelines.products.staging import block_slices, staging_grid
from landstack.pipelines.products.windowed import Mapped, Rasterised, RasterView


def ras_channels(encoded: np.ndarray, bands: list[str], what: str) -> np.ndarray:
    """Encoded probabilities with one channel per RAS class, in the catalogue's order.

    Bands are matched by their description (the class code); a class the model does not predict
    (e.g. one absent from its training samples) gets probability 0.
    """
    order = [int(c) for c in clcplus.class_codes()]
    try:
        found = [int(b) for b in bands]
    except ValueError:
        found = order if len(bands) == len(order) else []
    unknown = sorted(set(found) - set(order))
    if not found or unknown or len(set(found)) != len(found):
        raise BadInputError(
            f"{what}: band descriptions {bands} are not distinct RAS class codes {order}; "
            "predict with a land-cover model whose outputs are the catalogue's class codes"
        )
    out = np.zeros((len(order), *encoded.shape[1:]), np.uint8)
    for i, code in enumerate(found):
        out[order.index(code)] = encoded[i]
    out[:, (encoded == clcplus.PROB_NODATA).any(axis=0)] = clcplus.PROB_NODATA
    return out


def _calibration(p: PostprocessOptions) -> clcplus.CalibrationConfig:
    return clcplus.CalibrationConfig(
        standard=p.standard_percentile, leaf_type=p.leaf_type_percentile, conversion=p.conversion_percentile
    )


def _masks(ctx: TileContext) -> tuple[Any, Any]:
    """(sea, corrections) views rasterised window by window, or None where not configured."""
    from landstack.pipelines.products import vectors

    p, grid = ctx.p, ctx.grid
    crs = CRS.from_user_input(grid.crs)
    sea = corrections = None
    if p.sea_mask:
        url = p.sea_mask
        if Path(url).suffix.lower() in {".geojson", ".json", ".gpkg"}:
            feats, src = vectors.read_features(url, ctx.s3)

            def burn_sea(shape: tuple[int, int], t: Affine, c: CRS) -> np.ndarray:
                return vectors.rasterize_mask(feats, src, shape, t, c)
        else:

            def burn_sea(shape: tuple[int, int], t: Affine, c: CRS) -> np.ndarray:
                return vectors.read_mask_raster(url, shape, t, c, ctx.s3)

        sea = Rasterised(burn_sea, grid.shape, grid.transform, crs)
    if p.corrections:
        allowed = codes.thematic_codes(codes.layer(codes.CLCPLUS_RAS))
        cfeats, csrc = vectors.read_features(p.corrections, ctx.s3)

        def burn_corrections(shape: tuple[int, int], t: Affine, c: CRS) -> np.ndarray:
            return vectors.rasterize_classes(cfeats, csrc, p.corrections_field, shape, t, c, allowed)

        corrections = Rasterised(burn_corrections, grid.shape, grid.transform, crs)
    return sea, corrections


def _unit_masks(units: list[Mapped], path: Path, grid: TileGrid, block: int) -> Path:
    """Each unit's valid footprint, one band per unit, in a local tiled file (blending reads it
    with a wide halo; one byte per pixel instead of the probabilities' eleven)."""
    staged = cog.StagedRaster(
        path, staging_grid(grid), len(units), "uint8", 255, [f"unit {k}" for k in range(len(units))]
    )
    for win in windows(grid.shape, block):
        rows, cols = block_slices(win)
        staged.write(
            win,
            np.stack([~(u[:, rows, cols] == clcplus.PROB_NODATA).any(axis=0) for u in units]).astype(
                np.uint8
            ),
        )
    return staged.close()


def write_clcplus(
    ctx: TileContext, doc: dict[str, Any], prev: RasterView | None, work: Path
) -> tuple[dict[tuple[int, int], float], int]:
    """Write the CLCplus layers (RAS, RASCL, RASDL, RASPL; RAS also kept locally for HRL) and the
    input probabilities of a prediction item `doc`, calibrated against `prev` (the previous year's
    input probabilities) when given; `work` holds the staging files.

    Returns (change thresholds, blended production units: 1 when not blended).
    """
    from landstack.pipelines.products import blend_blocks, blending, clcplus_blocks

    grid, block, filt = ctx.grid, ctx.p.block, ctx.filter_args()
    n = len(clcplus.class_codes())
    units = []
    for k in family_assets(doc, "clcplus-backbone"):
        ds, bands = ctx.inputs.open(doc["assets"][k]["href"], k)
        ras_channels(np.zeros((len(bands), 1, 1), np.uint8), bands, k)  # bad band names fail early

        def channels(a: np.ndarray, b: list[str] = bands, key: str = k) -> np.ndarray:
            return ras_channels(a, b, key)

        units.append(Mapped(RasterView(ds), channels, (n, *grid.shape)))
    blended = len(units) > 1
    probs = ctx.out.plain(
        PROBABILITIES, n, "uint8", clcplus.PROB_NODATA, [str(c) for c in clcplus.class_codes()]
    )
    if blended:
        with rasterio.open(_unit_masks(units, work / "units.tif", grid, block)) as mds:
            masks = [
                Mapped(RasterView(mds, [k + 1], squeeze=True), lambda a: a > 0, grid.shape)
                for k in range(len(units))
            ]
            # the units' cores and buffer as the predict step recorded them (not their footprints)
            keys = [k.removeprefix("clcplus-backbone-") for k in family_assets(doc, "clcplus-backbone")]
            cores = blending.production_cores(doc, keys, grid, ctx.s3)
            for win, enc in blend_blocks.blend_blocks(
                units,
                masks,
                block=block,
                pixel_size=grid.resolution,
                buffer=cores.buffer,
                cores=cores,
                **filt,
            ):
                probs.write(win, enc)
    else:
        for win in windows(grid.shape, block):
            rows, cols = block_slices(win)
            probs.write(win, units[0][:, rows, cols])
    thresholds: dict[tuple[int, int], float] = {}
    with rasterio.open(probs.close()) as pds:
        sea, corrections = _masks(ctx)

        def blocks() -> Iterator[tuple[Window, dict[str, np.ndarray]]]:
            nonlocal thresholds
            for win, layers in clcplus_blocks.clcplus_blocks(
                RasterView(pds),
                ctx.score,
                prev_encoded=prev,
                production_area=ctx.inside,
                sea=sea,
                corrections=corrections,
                block=block,
                calibration=_calibration(ctx.p),
                filter_inputs=not blended,
                **filt,
            ):
                thresholds = layers.thresholds
                yield win, {name: getattr(layers, name) for name in FAMILY_LAYERS["clcplus-backbone"]}

        ctx.out.layers(dict.fromkeys(FAMILY_LAYERS["clcplus-backbone"], grid), blocks(), keep=("ras",))
    ctx.out.put_plain(PROBABILITIES, probs)
    return thresholds, len(units) if blended else 1
