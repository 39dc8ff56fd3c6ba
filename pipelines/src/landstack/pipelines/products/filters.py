"""Edge-preserving smoothing of class probabilities before the arg-max.

A joint bilateral filter: each pixel's probability vector becomes a weighted mean of the vectors in
a small window, weighted by spatial closeness and by similarity of the probability vectors
(Euclidean distance). Isolated, uncertain pixels take their neighbours' class while the sharp
borders between confident regions stay where they are.
"""

from __future__ import annotations

import numpy as np

from landstack.pipelines.products.errors import ShapeError

WIN_SIZE = 4
SIGMA_SPATIAL = 0.8
SIGMA_COLOR = 0.25
_STRIP_PIXELS = 32_768  # pixels per strip: 11 float32 channels x 4 arrays stay within L2


def bilateral_filter(
    prob: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    win_size: int = WIN_SIZE,
    sigma_spatial: float = SIGMA_SPATIAL,
    sigma_color: float = SIGMA_COLOR,
) -> np.ndarray:
    """Joint bilateral filter of probabilities `prob` (C, H, W) in 0-1; returns float32 (C, H, W).

    The window spans `radius = win_size // 2` pixels on each side. `valid` (H, W) marks pixels with
    data: invalid pixels neither contribute to their neighbours nor change. The loop runs over the
    (2 r + 1)^2 window offsets, each a whole-strip array operation.
    """
    if prob.ndim != 3:
        raise ShapeError(f"probabilities must be (classes, rows, cols), got shape {prob.shape}")
    if win_size < 1 or sigma_spatial <= 0 or sigma_color <= 0:
        raise ValueError(
            f"win_size={win_size}, sigma_spatial={sigma_spatial}, sigma_color={sigma_color}: "
            "win_size must be >= 1 and both sigmas > 0"
        )
    _, h, w = prob.shape
    p = prob.astype(np.float32, copy=False)
    ok = np.ones((h, w), bool) if valid is None else np.asarray(valid, bool)
    if ok.shape != (h, w):
        raise ShapeError(f"valid mask {ok.shape} does not match the probabilities' grid {(h, w)}")
    r = win_size // 2
    padded = np.pad(p, ((0, 0), (r, r), (r, r)), mode="edge")
    ok_pad = np.pad(ok, r, constant_values=False)  # beyond the array edge nothing contributes
    acc = np.empty_like(p)
    wsum = np.empty((h, w), np.float32)
    strip = max(1, _STRIP_PIXELS // max(w, 1))
    for r0 in range(0, h, strip):  # row strips keep the working set in cache
        r1 = min(h, r0 + strip)
        acc[:, r0:r1], wsum[r0:r1] = _accumulate(
            padded[:, r0 : r1 + 2 * r], ok_pad[r0 : r1 + 2 * r], r, sigma_spatial, sigma_color
        )
    out = np.where(ok & (wsum > 0), acc / np.maximum(wsum, np.float32(1e-12)), p)
    return out.astype(np.float32, copy=False)


def _accumulate(
    padded: np.ndarray, ok_pad: np.ndarray, r: int, sigma_spatial: float, sigma_color: float
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted sum and weight total of one strip; `padded` carries `r` pixels of halo on each side."""
    c, hp, wp = padded.shape
    h, w = hp - 2 * r, wp - 2 * r
    centre = padded[:, r : r + h, r : r + w]
    acc = np.zeros((c, h, w), np.float32)
    wsum = np.zeros((h, w), np.float32)
    diff = np.empty((c, h, w), np.float32)
    inv_2ss = 1.0 / (2.0 * sigma_spatial**2)
    inv_2sc = np.float32(1.0 / (2.0 * sigma_color**2))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            shifted = padded[:, r + dy : r + dy + h, r + dx : r + dx + w]
            np.subtract(shifted, centre, out=diff)
            np.square(diff, out=diff)
            weight = np.exp(-diff.sum(axis=0) * inv_2sc)
            weight *= np.float32(np.exp(-(dy * dy + dx * dx) * inv_2ss))
            weight *= ok_pad[r + dy : r + dy + h, r + dx : r + dx + w]
            acc += shifted * weight
            wsum += weight
    return acc, wsum
