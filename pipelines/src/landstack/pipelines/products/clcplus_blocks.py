"""CLCplus layers of a whole tile, block by block, so memory follows the block size.

The interannual calibration needs percentiles of the change measure over the whole tile, so the
tile is processed in two passes over the same blocks: the first filters both years and collects a
histogram of the change measure per change direction (fixed bins over 0 .. sqrt 2), from which
the thresholds are read; the second filters again and produces the layers with those thresholds.
Each block is read with a halo of the filter radius, so the result equals the whole-array
computation with the same thresholds. Inputs may be anything sliceable into numpy arrays
(numpy arrays, memory maps, zarr or h5py datasets).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rasterio.windows import Window

from landstack.pipelines.products import clcplus
from landstack.pipelines.products.filters import SIGMA_COLOR, SIGMA_SPATIAL, WIN_SIZE, bilateral_filter
from landstack.pipelines.products.raster import windows

BINS = 4096
_MAX = float(np.sqrt(2.0))


@dataclass
class ChangeStats:
    """Histograms of the change measure per change direction (previous class, new class)."""

    n_classes: int
    bins: int = BINS
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros((self.n_classes * self.n_classes, self.bins), np.int64)

    def add(self, prob: np.ndarray, prev: np.ndarray, valid: np.ndarray) -> None:
        """Count the changing pixels of a block (probabilities already filtered)."""
        now_i, prev_i = np.argmax(prob, axis=0), np.argmax(prev, axis=0)
        changed = valid & (now_i != prev_i)
        if not changed.any():
            return
        dist = clcplus.change_measure(prob, prev)[changed]
        b = np.minimum((dist / _MAX * self.bins).astype(np.int64), self.bins - 1)
        direction = prev_i[changed] * self.n_classes + now_i[changed]
        flat = np.bincount(direction * self.bins + b, minlength=self.counts.size)
        self.counts += flat.reshape(self.counts.shape)

    def thresholds(self, config: clcplus.CalibrationConfig | None = None) -> dict[tuple[int, int], float]:
        """Threshold per observed direction: the configured percentile of the pooled distribution
        (or of the direction's own with `per_direction`), as the upper edge of its bin."""
        cfg = config or clcplus.CalibrationConfig()
        codes = clcplus.class_codes().tolist()
        pooled = self.counts.sum(axis=0)
        out: dict[tuple[int, int], float] = {}
        for d in np.flatnonzero(self.counts.sum(axis=1)):
            src, dst = codes[d // self.n_classes], codes[d % self.n_classes]
            if (src, dst) in cfg.thresholds:
                out[(src, dst)] = float(cfg.thresholds[(src, dst)])
                continue
            own = self.counts[d]
            hist = own if cfg.per_direction and own.sum() >= cfg.min_samples else pooled
            out[(src, dst)] = _percentile(hist, cfg.percentile(src, dst))
        return out


def _percentile(hist: np.ndarray, q: float) -> float:
    cum = np.cumsum(hist)
    k = int(np.searchsorted(cum, q / 100.0 * cum[-1], side="left"))
    return (k + 1) / hist.size * _MAX


def _halo(win: Window, r: int, shape: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices of the block plus halo in the array, and of the block inside that halo'd read."""
    r0, c0 = max(0, win.row_off - r), max(0, win.col_off - r)
    r1, c1 = min(shape[0], win.row_off + win.height + r), min(shape[1], win.col_off + win.width + r)
    inner = (
        slice(win.row_off - r0, win.row_off - r0 + win.height),
        slice(win.col_off - c0, win.col_off - c0 + win.width),
    )
    return (slice(r0, r1), slice(c0, c1)), inner


def _sub(arr: Any, rows: slice, cols: slice) -> np.ndarray | None:
    return None if arr is None else np.asarray(arr[rows, cols])


def change_thresholds(
    encoded: Any,
    prev_encoded: Any,
    *,
    block: int = 1024,
    win_size: int = WIN_SIZE,
    sigma_spatial: float = SIGMA_SPATIAL,
    sigma_color: float = SIGMA_COLOR,
    calibration: clcplus.CalibrationConfig | None = None,
    filter_inputs: bool = True,
) -> dict[tuple[int, int], float]:
    """First pass: change thresholds per direction from the whole tile, block by block.

    `filter_inputs=False` when both years' probabilities were filtered before (blended ones).
    """
    shape = (int(encoded.shape[1]), int(encoded.shape[2]))
    stats = ChangeStats(int(encoded.shape[0]))
    r = win_size // 2 if filter_inputs else 0
    for win in windows(shape, block):
        (rows, cols), (ir, ic) = _halo(win, r, shape)
        prob, valid = clcplus.decode_probabilities(np.asarray(encoded[:, rows, cols]))
        prev, prev_valid = clcplus.decode_probabilities(np.asarray(prev_encoded[:, rows, cols]))
        if filter_inputs:
            prob = bilateral_filter(
                prob, valid, win_size=win_size, sigma_spatial=sigma_spatial, sigma_color=sigma_color
            )
            prev = bilateral_filter(
                prev, prev_valid, win_size=win_size, sigma_spatial=sigma_spatial, sigma_color=sigma_color
            )
        stats.add(prob[:, ir, ic], prev[:, ir, ic], (valid & prev_valid)[ir, ic])
    return stats.thresholds(calibration)


def clcplus_blocks(
    encoded: Any,
    data_score: Any,
    *,
    prev_encoded: Any = None,
    production_area: Any = None,
    sea: Any = None,
    corrections: Any = None,
    block: int = 1024,
    win_size: int = WIN_SIZE,
    sigma_spatial: float = SIGMA_SPATIAL,
    sigma_color: float = SIGMA_COLOR,
    calibration: clcplus.CalibrationConfig | None = None,
    thresholds: Mapping[tuple[int, int], float] | None = None,
    filter_inputs: bool = True,
) -> Iterator[tuple[Window, clcplus.ClcplusLayers]]:
    """(window, layers) of every block of a tile; the same arguments as `clcplus.clcplus_layers`.

    With `prev_encoded` and no `thresholds`, a first pass computes them over the whole tile.
    Without filtering (`filter_inputs=False`) no halo is read.
    """
    shape = (int(encoded.shape[1]), int(encoded.shape[2]))
    if prev_encoded is not None and thresholds is None:
        thresholds = change_thresholds(
            encoded,
            prev_encoded,
            block=block,
            win_size=win_size,
            sigma_spatial=sigma_spatial,
            sigma_color=sigma_color,
            calibration=calibration,
            filter_inputs=filter_inputs,
        )
    r = win_size // 2 if filter_inputs else 0
    for win in windows(shape, block):
        (rows, cols), (ir, ic) = _halo(win, r, shape)
        layers = clcplus.clcplus_layers(
            np.asarray(encoded[:, rows, cols]),
            np.asarray(data_score[rows, cols]),
            prev_encoded=None if prev_encoded is None else np.asarray(prev_encoded[:, rows, cols]),
            production_area=_sub(production_area, rows, cols),
            sea=_sub(sea, rows, cols),
            corrections=_sub(corrections, rows, cols),
            calibration=calibration,
            thresholds=thresholds,
            win_size=win_size,
            sigma_spatial=sigma_spatial,
            sigma_color=sigma_color,
            filter_inputs=filter_inputs,
        )
        yield (
            win,
            clcplus.ClcplusLayers(
                layers.ras[ir, ic],
                layers.rascl[ir, ic],
                layers.rasdl[ir, ic],
                layers.raspl[ir, ic],
                dict(thresholds or {}),
            ),
        )
