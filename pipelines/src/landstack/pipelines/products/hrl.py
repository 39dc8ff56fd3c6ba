"""HRL style imperviousness: sealing mask, final density (IMD) and the classified change.

The sealing mask joins pixels whose raw density exceeds 90 % with the Sealed class of the same
year's CLCplus style land cover; the final density is recalculated on the mask's pixels and is 0
elsewhere. Codes (mask values, change classes, nodata) come from the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landstack.pipelines.products import codes
from landstack.pipelines.products.errors import ShapeError

SEALING_THRESHOLD = 90.0


def _check(grid: tuple[int, ...], **arrays: np.ndarray | None) -> None:
    for name, arr in arrays.items():
        if arr is not None and arr.shape != grid:
            raise ShapeError(f"{name} has shape {arr.shape}, expected the tile grid {grid}")


def sealing_mask(
    raw_imd: np.ndarray,
    ras: np.ndarray | None,
    valid: np.ndarray | None = None,
    threshold: float = SEALING_THRESHOLD,
) -> np.ndarray:
    """uint8 mask: 1 where raw IMD > `threshold` or RAS is Sealed, 0 elsewhere, nodata where invalid.

    `raw_imd` is the predicted density in percent (any numeric dtype, NaN = no data); `ras` the same
    year's CLCplus RAS (optional; its outside-area pixels are outside here too).
    """
    _check(raw_imd.shape, ras=ras, valid=valid)
    spec = codes.layer(codes.HRL_SEALING)
    imd = np.asarray(raw_imd, np.float32)
    ok = np.isfinite(imd) if valid is None else (np.asarray(valid, bool) & np.isfinite(imd))
    sealed = np.nan_to_num(imd, nan=0.0) > threshold
    if ras is not None:
        ras_spec = codes.layer(codes.CLCPLUS_RAS)
        sealed |= ras == codes.code(ras_spec, "Sealed")
        ok &= ras != codes.code(ras_spec, codes.OUTSIDE)
    out = np.where(sealed, codes.code(spec, "Impervious"), codes.code(spec, "Non-impervious"))
    out = out.astype(codes.np_dtype(spec))
    out[~ok] = int(spec.nodata)
    return out


def final_imd(
    raw_imd: np.ndarray, mask: np.ndarray, previous: np.ndarray | None = None, tolerance: float = 0.0
) -> np.ndarray:
    """Final IMD (uint8 0-100, nodata where the mask is nodata) recalculated on the sealing mask.

    Inside the mask the density is the raw value rounded into 1-100 (a sealed pixel is never 0 %);
    outside it is 0. With `previous` (last reference year's final IMD) and `tolerance` > 0, the
    calibration keeps last year's value where the two differ by at most `tolerance` percentage
    points, so noise does not show up as change.
    """
    _check(raw_imd.shape, mask=mask, previous=previous)
    spec, mask_spec = codes.layer(codes.HRL_IMD), codes.layer(codes.HRL_SEALING)
    lo, hi = (int(v) for v in spec.value_range or (0, 100))
    imd = np.rint(np.nan_to_num(np.asarray(raw_imd, np.float32), nan=0.0))
    sealed = mask == codes.code(mask_spec, "Impervious")
    out = np.where(sealed, np.clip(imd, max(lo, 1), hi), lo).astype(codes.np_dtype(spec))
    if previous is not None and tolerance > 0:
        prev_ok = (previous != spec.nodata) & (previous > lo)
        stable = prev_ok & sealed & (np.abs(out.astype(np.int16) - previous.astype(np.int16)) <= tolerance)
        out[stable] = previous[stable]
    out[mask == mask_spec.nodata] = int(spec.nodata)
    return out


@dataclass(frozen=True)
class _ChangeCodes:
    unchanged_non: int
    new: int
    loss: int
    unchanged: int
    increased: int
    decreased: int
    unclassifiable: int
    outside: int


def _change_codes() -> _ChangeCodes:
    spec = codes.layer(codes.HRL_CHANGE)
    return _ChangeCodes(
        unchanged_non=codes.code(spec, "Unchanged non-impervious"),
        new=codes.code(spec, "New impervious cover"),
        loss=codes.code(spec, "Loss of impervious cover"),
        unchanged=codes.code(spec, "Unchanged impervious"),
        increased=codes.code(spec, "Increased imperviousness"),
        decreased=codes.code(spec, "Decreased imperviousness"),
        unclassifiable=codes.code(spec, "Unclassifiable"),
        outside=codes.code(spec, codes.OUTSIDE),
    )


def imd_change(imd_start: np.ndarray, imd_end: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """Classified change between the final IMD of two reference years (uint8, the spec's codes).

    0 in both years: unchanged non-impervious; 0 -> > 0: new cover; > 0 -> 0: loss; > 0 in both:
    unchanged (|difference| <= `tolerance`), increased or decreased. No data in one year:
    unclassifiable; in both: outside area.
    """
    _check(imd_start.shape, imd_end=imd_end)
    nodata = codes.layer(codes.HRL_IMD).nodata
    c = _change_codes()
    a, b = imd_start.astype(np.int16), imd_end.astype(np.int16)
    a_ok, b_ok = imd_start != nodata, imd_end != nodata
    diff = b - a
    out = np.full(a.shape, c.outside, np.uint8)
    both = a_ok & b_ok
    out[both & (a == 0) & (b == 0)] = c.unchanged_non
    out[both & (a == 0) & (b > 0)] = c.new
    out[both & (a > 0) & (b == 0)] = c.loss
    imp = both & (a > 0) & (b > 0)
    out[imp & (np.abs(diff) <= tolerance)] = c.unchanged
    out[imp & (diff > tolerance)] = c.increased
    out[imp & (diff < -tolerance)] = c.decreased
    out[a_ok ^ b_ok] = c.unclassifiable
    return out.astype(codes.np_dtype(codes.layer(codes.HRL_CHANGE)))


@dataclass
class HrlLayers:
    """IMD, sealing mask and (when a previous year is given) the change layer of one tile."""

    imd: np.ndarray
    sealing_mask: np.ndarray
    change: np.ndarray | None = None


def hrl_layers(
    raw_imd: np.ndarray,
    ras: np.ndarray | None = None,
    *,
    valid: np.ndarray | None = None,
    previous_imd: np.ndarray | None = None,
    calibration_tolerance: float = 0.0,
    change_tolerance: int = 0,
    threshold: float = SEALING_THRESHOLD,
) -> HrlLayers:
    """The HRL layers of a tile from the raw predicted density and the same year's RAS."""
    mask = sealing_mask(raw_imd, ras, valid, threshold)
    imd = final_imd(raw_imd, mask, previous_imd, calibration_tolerance)
    change = imd_change(previous_imd, imd, change_tolerance) if previous_imd is not None else None
    return HrlLayers(imd, mask, change)
