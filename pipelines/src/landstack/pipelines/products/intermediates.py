"""The intermediate layers of one roll-out tile, streamed block by block from its predictions.

Names the layers each family writes under ``intermediates/<year>/<tile>/`` (the catalogue spec
behind each), holds what every family's block loop needs (:class:`TileContext`: parameters, grid,
data score, the store's rasters in and out) and drives the per-pixel and 30 m families: HRL
imperviousness (:func:`write_hrl`), EMC built-up (:func:`write_emc`) and CISC (:func:`write_cisc`).
CLCplus, with its blending and calibration passes, is in :mod:`clcplus_tile`.

Every driver reads its inputs window by window and hands blocks to :class:`staging.LayerWriter`,
so memory follows the block size, not the tile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import rasterio
from rasterio.windows import Window

from landstack.catalog.grid import TileGrid
from landstack.pipelines.errors import BadInputError
from landstack.pipelines.products import cisc as cisc_mod
from landstack.pipelines.products import clcplus, codes, emc_built, hrl
from landstack.pipelines.products.raster import windows
from landstack.pipelines.products.staging import LayerWriter, StoreRasters, block_slices
from landstack.pipelines.products.windowed import Mapped, RasterView
from landstack.storage import S3Options

SCORE_NODATA = 65535  # the data score outside the production area
PROBABILITIES = "clcplus-probabilities"  # the CLCplus input probabilities (next year's calibration)
# the spec layer behind each intermediate layer name
SPEC_LAYERS = {
    "ras": codes.CLCPLUS_RAS,
    "rascl": codes.CLCPLUS_RASCL,
    "rasdl": codes.CLCPLUS_RASDL,
    "raspl": codes.CLCPLUS_RASPL,
    "imd": codes.HRL_IMD,
    "sealing-mask": codes.HRL_SEALING,
    "change": codes.HRL_CHANGE,
    "cisc-classes": codes.CISC_CLASSES,
    "cisc-valid-mask": codes.CISC_VALID,
}
EMC_LAYERS = ("emc-s", "emc-nres", "emc-greenness")
FAMILY_LAYERS = {
    "clcplus-backbone": ("ras", "rascl", "rasdl", "raspl"),
    "hrl-imperviousness": ("imd", "sealing-mask", "change"),
    "emc-built": EMC_LAYERS,
    "cisc": ("cisc-classes", "cisc-valid-mask"),
}


class PostprocessOptions(Protocol):
    """The post-processing parameters the families read (the postprocess step's parameters)."""

    win_size: int
    sigma_spatial: float
    sigma_color: float
    standard_percentile: float
    leaf_type_percentile: float
    conversion_percentile: float
    sea_mask: str | None
    corrections: str | None
    corrections_field: str
    imd_calibration_tolerance: float
    change_tolerance: int
    ndwi_threshold: float
    cisc_min_valid: int
    block: int


def family_assets(doc: dict[str, Any], family: str) -> list[str]:
    """Asset keys of a family in a prediction item: `<family>` or one `<family>-<unit>` per
    production unit."""
    return sorted(k for k in doc.get("assets", {}) if k == family or k.startswith(family + "-"))


@dataclass
class TileContext:
    """What every family's streaming needs: parameters, grid, data score and the tile's I/O."""

    p: PostprocessOptions
    grid: TileGrid
    score: RasterView
    s3: S3Options | None
    inputs: StoreRasters
    out: LayerWriter

    @property
    def inside(self) -> Mapped:
        """The production area (where the data score has data), window by window."""
        return Mapped(self.score, lambda a: a != SCORE_NODATA, self.grid.shape)

    def filter_args(self) -> dict[str, Any]:
        """The bilateral filter's keyword arguments."""
        return {
            "win_size": self.p.win_size,
            "sigma_spatial": self.p.sigma_spatial,
            "sigma_color": self.p.sigma_color,
        }


def write_hrl(ctx: TileContext, doc: dict[str, Any], prev_assets: dict[str, Any]) -> None:
    """The HRL layers block by block (every operation is per pixel: no halo); change only with
    a previous year's IMD in `prev_assets`, RAS-based corrections only once CLCplus kept its RAS."""
    assets = doc["assets"]
    members = [ctx.inputs.band(assets[k]["href"], k, "imd") for k in family_assets(doc, "hrl-imperviousness")]
    previous = ctx.inputs.band(prev_assets["imd"]["href"], "imd") if "imd" in prev_assets else None
    p = ctx.p
    with contextlib.ExitStack() as stack:
        ras_path = ctx.out.kept.get("ras")
        ras = (
            RasterView(stack.enter_context(rasterio.open(ras_path)), [1], squeeze=True) if ras_path else None
        )

        def blocks() -> Iterator[tuple[Window, dict[str, np.ndarray]]]:
            for win in windows(ctx.grid.shape, p.block):
                sl = block_slices(win)
                h = hrl.hrl_layers(
                    emc_built.ensemble_mean([m[sl] for m in members]),
                    None if ras is None else ras[sl],
                    valid=ctx.score[sl] != SCORE_NODATA,
                    previous_imd=None if previous is None else previous[sl],
                    calibration_tolerance=p.imd_calibration_tolerance,
                    change_tolerance=p.change_tolerance,
                )
                yield win, {"imd": h.imd, "sealing-mask": h.sealing_mask, "change": h.change}  # type: ignore[dict-item]

        names = ("imd", "sealing-mask", "change") if previous is not None else ("imd", "sealing-mask")
        ctx.out.layers(dict.fromkeys(names, ctx.grid), blocks())


def write_emc(ctx: TileContext, doc: dict[str, Any]) -> None:
    """S, NRES and greenness on the 10 m tile, block by block with the greenness halo."""
    assets, shape = doc["assets"], ctx.grid.shape
    keys = family_assets(doc, "emc-built")
    # the models predict m² of built-up surface per cell (the unit of their training truth)
    cell_m2 = float(ctx.grid.resolution) ** 2

    def fraction(a: np.ndarray) -> np.ndarray:
        return a / cell_m2

    s = [Mapped(ctx.inputs.band(assets[k]["href"], k, "s"), fraction, shape) for k in keys]
    nres = [Mapped(ctx.inputs.band(assets[k]["href"], k, "nres"), fraction, shape) for k in keys]
    ndvi = ctx.inputs.band(assets["medians"]["href"], "medians", "ndvi_median")
    ndwi = ctx.inputs.band(assets["medians"]["href"], "medians", "ndwi_median", last=True)
    staged = {
        name: ctx.out.plain(name, 1, "float32", float("nan"), [name.removeprefix("emc-").upper()])
        for name in EMC_LAYERS
    }
    block = max(100, ctx.p.block // 100 * 100)  # whole 100 m / 1 km cells (and greenness cells)
    for win, layers in emc_built.emc_blocks(
        s, nres, ndwi, ndvi, block=block, ndwi_threshold=ctx.p.ndwi_threshold
    ):
        for name, raster in staged.items():
            raster.write(win, layers[name.removeprefix("emc-")][None].astype(np.float32))
    for name, raster in staged.items():
        ctx.out.put_plain(name, raster)


def cisc_grid(grid: TileGrid) -> tuple[TileGrid, tuple[int, int]]:
    """The 30 m grid (aligned to the CISC grid's 30 m multiples) covering a 10 m tile, and the
    (row, col) offset of the 10 m tile inside that grid's 10 m version."""
    spec = codes.layer(codes.CISC_CLASSES)
    g30 = TileGrid.from_bounds(grid.bounds, spec.grid.resolution, grid.crs)
    row = round((g30.transform.f - grid.transform.f) / grid.resolution)
    col = round((grid.transform.c - g30.transform.c) / grid.resolution)
    return g30, (row, col)


def write_cisc(ctx: TileContext, doc: dict[str, Any]) -> None:
    """CISC classes and valid mask on the 30 m grid, one block of 30 m pixels at a time."""
    spec = codes.layer(codes.CISC_CLASSES)
    keys = family_assets(doc, "cisc")
    # several production units: the first unit's classes (CISC has no blending rule)
    ds, _ = ctx.inputs.open(doc["assets"][keys[0]]["href"], keys[0])
    order = np.array(codes.thematic_codes(spec), np.uint8)
    if ds.count != order.size:
        raise BadInputError(
            f"the prediction's cisc asset has {ds.count} bands; CISC needs {order.size} class probabilities"
        )
    view, grid = RasterView(ds), ctx.grid
    g30, (r, c) = cisc_grid(grid)
    nodata = int(spec.nodata)

    def blocks() -> Iterator[tuple[Window, dict[str, np.ndarray]]]:
        for w30 in windows(g30.shape, max(1, ctx.p.block // 3)):
            # the block's 10 m pixels, in tile rows/cols (the tile sits at (r, c) of the 10 m grid)
            top, left, h, w = w30.row_off * 3 - r, w30.col_off * 3 - c, w30.height * 3, w30.width * 3
            fine = np.full((h, w), nodata, np.uint8)
            inside = np.zeros((h, w), bool)
            r0, r1 = max(0, top), min(grid.height, top + h)
            c0, c1 = max(0, left), min(grid.width, left + w)
            if r0 < r1 and c0 < c1:
                prob, valid = clcplus.decode_probabilities(view[:, r0:r1, c0:c1])
                part = (slice(r0 - top, r1 - top), slice(c0 - left, c1 - left))
                fine[part] = np.where(valid, order[np.argmax(prob, axis=0)], nodata)
                inside[part] = ctx.score[r0:r1, c0:c1] != SCORE_NODATA
            inside30 = np.asarray(inside.reshape(w30.height, 3, w30.width, 3).any(axis=(1, 3)), bool)
            layers = cisc_mod.cisc_layers(fine, inside30, min_valid=ctx.p.cisc_min_valid)
            yield w30, {"cisc-classes": layers.classes, "cisc-valid-mask": layers.valid_mask}

    ctx.out.layers({"cisc-classes": g30, "cisc-valid-mask": g30}, blocks())
