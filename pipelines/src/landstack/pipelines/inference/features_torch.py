"""The predictor's feature kernels in torch, on the model's device.

On a GPU the numpy feature path would starve the model, so when the local backend runs on CUDA the
window's raw digital numbers (uint16 sent as int16 bits) and SCL go to the device, and masking,
interpolation, indices, quantiles and the NDVI harmonic fit run there; the features never come
back to the host. Same definitions and results as `landstack.pipelines.features` (equal within
1e-5); inputs are (T, P) tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from landstack.pipelines import s2
from landstack.pipelines.features import INDICES, FeatureConfig, harmonic_design


def to_device(
    dn: dict[str, np.ndarray], scl: np.ndarray, device: Any
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Digital numbers (uint16, sent as their int16 bits) and SCL (uint8) onto `device` as int32/uint8."""

    def dn_tensor(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).to(device, non_blocking=True)
        return t.to(torch.int32) & 0xFFFF  # back to the unsigned value

    return {b: dn_tensor(a) for b, a in dn.items()}, torch.from_numpy(np.ascontiguousarray(scl)).to(device)


def valid_mask(scl: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """True where the SCL class is usable."""
    bad = torch.tensor(sorted({*cfg.mask_classes, *cfg.nodata_classes}), dtype=scl.dtype, device=scl.device)
    return ~torch.isin(scl, bad)


def _refl(dn: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
    return (dn.to(torch.float32) + off) / float(s2.QUANTIFICATION_VALUE)


def offsets_tensor(offsets: np.ndarray, device: Any) -> torch.Tensor:
    """(T, 1) float32 digital-number offsets on `device`."""
    return torch.from_numpy(np.asarray(offsets).astype(np.float32)[:, None]).to(device)


def masked_reflectance(dn: torch.Tensor, off: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Reflectance where `valid`, NaN elsewhere."""
    return torch.where(valid, _refl(dn, off), float("nan"))


def normalised_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    s = a + b
    nz = s != 0
    return torch.where(nz, (a - b) / torch.where(nz, s, torch.ones_like(s)), torch.zeros_like(s))


def _bracket(
    valid: torch.Tensor, obs_days: np.ndarray, target_days: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(before, after, weight, empty) around each target step, as `features.bracket`."""
    dev = valid.device
    t, p = valid.shape
    order = torch.arange(t, device=dev)[:, None].expand(t, p)
    last = torch.cummax(torch.where(valid, order, torch.full_like(order, -1)), dim=0).values
    nxt = torch.flip(
        torch.cummin(torch.flip(torch.where(valid, order, torch.full_like(order, t)), [0]), dim=0).values, [0]
    )
    k = torch.from_numpy(np.searchsorted(obs_days, target_days, side="right") - 1).to(dev)
    s = k.numel()
    before = torch.full((s, p), -1, dtype=torch.int64, device=dev)
    after = torch.full((s, p), t, dtype=torch.int64, device=dev)
    has = k >= 0
    before[has] = last[k[has]]
    has = k + 1 < t
    after[has] = nxt[k[has] + 1]
    before = torch.where(before < 0, after, before)
    after = torch.where(after >= t, before, after)
    empty = ~valid.any(dim=0)
    before, after = before.clamp(0, t - 1), after.clamp(0, t - 1)
    days = torch.from_numpy(np.asarray(obs_days, np.float64)).to(dev)
    d0 = days[before]
    span = days[after] - d0
    target = torch.from_numpy(np.asarray(target_days, np.float64)).to(dev)[:, None]
    w = torch.where(span > 0, (target - d0) / torch.where(span > 0, span, torch.ones_like(span)), 0.0)
    return before, after, w.to(torch.float32), empty


def _interpolate(
    values: torch.Tensor, before: torch.Tensor, after: torch.Tensor, w: torch.Tensor, empty: torch.Tensor
) -> torch.Tensor:
    v0 = values.gather(0, before)
    out = v0 + (values.gather(0, after) - v0) * w
    out[:, empty] = float("nan")
    return out


def series_features(
    dn: dict[str, torch.Tensor],
    scl: torch.Tensor,
    offsets: np.ndarray,
    obs_days: np.ndarray,
    target_days: np.ndarray,
    cfg: FeatureConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolated features (F, S, P) float32 and data score (P,) int32, on the inputs' device."""
    valid = valid_mask(scl, cfg)
    for b in cfg.needed_bands:
        valid &= dn[b] > 0
    before, after, w, empty = _bracket(valid, obs_days, target_days)
    off = offsets_tensor(offsets, scl.device)
    refl = {b: _refl(dn[b], off) for b in cfg.needed_bands}
    out = torch.empty(
        (len(cfg.names), len(target_days), scl.shape[1]), dtype=torch.float32, device=scl.device
    )
    for i, name in enumerate(cfg.names):
        if name in INDICES:
            a, b = INDICES[name]
            out[i] = _interpolate(normalised_difference(refl[a], refl[b]), before, after, w, empty)
        else:
            out[i] = _interpolate(refl[name], before, after, w, empty)
    return out, valid.sum(dim=0).to(torch.int32)


def nan_quantiles(values: torch.Tensor, qs: Sequence[float]) -> torch.Tensor:
    """Quantiles over dim 0 ignoring NaN, numpy's 'linear' method: (Q, P) float32."""
    srt = torch.sort(values, dim=0).values  # NaN sort last
    n = (~torch.isnan(values)).sum(dim=0)
    top = (n - 1).clamp(min=0)
    out = torch.empty((len(qs), values.shape[1]), dtype=torch.float32, device=values.device)
    for i, q in enumerate(qs):
        pos = q * top.to(torch.float64)
        lo = torch.floor(pos).to(torch.int64)
        hi = torch.minimum(lo + 1, top)
        frac = (pos - lo).to(torch.float32)
        v0 = srt.gather(0, lo[None])[0]
        v1 = srt.gather(0, hi[None])[0]
        out[i] = torch.where(n > 0, v0 + (v1 - v0) * frac, float("nan"))
    return out


def harmonic_fit(values: torch.Tensor, valid: torch.Tensor, design: np.ndarray) -> torch.Tensor:
    """Least-squares coefficients (K, P) per pixel over its valid observations; NaN if too few."""
    x = torch.from_numpy(design).to(values.device)
    w = valid.to(torch.float64)
    y = torch.where(valid, values.to(torch.float64), 0.0)
    xtx = torch.einsum("tk,tl,tp->pkl", x, x, w)
    xty = torch.einsum("tk,tp->pk", x, w * y)
    k = design.shape[1]
    xtx += torch.eye(k, dtype=torch.float64, device=values.device) * 1e-6
    coef = torch.linalg.solve(xtx, xty[..., None])[..., 0].T.contiguous()
    coef[:, valid.sum(dim=0) <= k] = float("nan")
    return coef.to(torch.float32)


def unet_features(
    dn: dict[str, torch.Tensor],
    scl: torch.Tensor,
    offsets: np.ndarray,
    obs_days: np.ndarray,
    cfg: FeatureConfig,
) -> tuple[torch.Tensor, list[str]]:
    """Band quantiles, NDVI harmonic coefficients and median NDVI: (N, P) float32 and their names."""
    valid = valid_mask(scl, cfg)
    for b in {*cfg.quantile_bands, "B04", "B08"}:
        valid &= dn[b] > 0
    off = offsets_tensor(offsets, scl.device)

    def refl(b: str) -> torch.Tensor:
        return torch.where(valid, _refl(dn[b], off), float("nan"))

    parts, names = [], []
    for b in cfg.quantile_bands:
        parts.append(nan_quantiles(refl(b), cfg.quantiles))
        names += [f"{b}_q{round(q * 100):02d}" for q in cfg.quantiles]
    ndvi = normalised_difference(refl("B08"), refl("B04"))
    design = harmonic_design(
        obs_days, cfg.harmonics, cfg.poly_degree, float(obs_days.mean()) if obs_days.size else 0
    )
    parts.append(harmonic_fit(torch.nan_to_num(ndvi), valid, design))
    names += [f"NDVI_c{k}" for k in range(design.shape[1])]
    parts.append(nan_quantiles(ndvi, [0.5]))
    names.append("NDVI_median")
    return torch.cat(parts, dim=0), names
