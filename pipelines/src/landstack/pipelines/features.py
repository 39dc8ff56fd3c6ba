"""Time-series features from a masked Sentinel-2 stack.

- SCL masking: classes 2, 3, 8, 9 are invalid by default (configurable); 0 and 1 are no data.
- Equidistant linear interpolation of every band and index (NDVI, NDWI, NDMI, NBR) to 10-day
  steps over the reference year ± 3 months (54 steps). Before the first and after the last valid
  observation the nearest valid value is held; a pixel without any valid observation is NaN
  (nodata) with data score 0, never interpolated.
- Data score: the number of valid observations per pixel.
- For the imperviousness U-Net: band quantiles over the valid observations, NDVI polynomial +
  harmonic coefficients, and the median NDVI (greenness).

All kernels are vectorised numpy on (time, pixel) arrays and run blockwise with dask, so memory is
bounded by the chunk size; the same kernels serve whole tiles (`timeseries_features`) and sample
points (landstack.pipelines.samples).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import dask.array as da
import numpy as np
import xarray as xr

from landstack.pipelines import s2
from landstack.pipelines.errors import FeatureError

# Per index: (a, b) for (a - b) / (a + b).
INDICES: dict[str, tuple[str, str]] = {
    "NDVI": ("B08", "B04"),
    "NDWI": ("B03", "B08"),
    "NDMI": ("B08", "B11"),
    "NBR": ("B08", "B12"),
}
DEFAULT_BANDS: tuple[str, ...] = ("B01", "B03", "B04", "B05", "B08", "B09", "B11", "B12")
DEFAULT_INDICES: tuple[str, ...] = ("NDVI", "NDWI", "NDMI", "NBR")
_EPOCH = np.datetime64("1970-01-01T00:00:00", "s")


@dataclass(frozen=True)
class FeatureConfig:
    """Which features, which SCL classes to mask, and the time steps."""

    bands: tuple[str, ...] = DEFAULT_BANDS
    indices: tuple[str, ...] = DEFAULT_INDICES
    mask_classes: tuple[int, ...] = s2.SCL_MASK_DEFAULT
    nodata_classes: tuple[int, ...] = s2.SCL_NODATA
    step_days: int = 10
    margin_months: int = 3
    quantiles: tuple[float, ...] = (0.10, 0.25, 0.50, 0.75, 0.90)
    harmonics: int = 2
    poly_degree: int = 1
    quantile_bands: tuple[str, ...] = ("B02", "B03", "B04", "B08", "B11", "B12")

    def __post_init__(self) -> None:
        unknown = [b for b in self.bands if b not in s2.REFLECTANCE_BANDS]
        unknown += [i for i in self.indices if i not in INDICES]
        if unknown:
            raise FeatureError(
                f"unknown features {unknown}; bands are {list(s2.REFLECTANCE_BANDS)}, indices {list(INDICES)}"
            )

    @property
    def names(self) -> list[str]:
        """Feature names in output order (bands, then indices)."""
        return [*self.bands, *self.indices]

    @property
    def needed_bands(self) -> list[str]:
        """Every band the time-series features read (bands and index inputs)."""
        need = list(self.bands)
        for i in self.indices:
            need += [b for b in INDICES[i] if b not in need]
        return need


def time_steps(reference_year: int, step_days: int = 10, margin_months: int = 3) -> np.ndarray:
    """Equidistant dates (datetime64[D]) covering the reference year ± margin: 54 steps by default."""
    start = (
        dt.date(reference_year - 1, 13 - margin_months, 1) if margin_months else dt.date(reference_year, 1, 1)
    )
    end_month = margin_months + 1
    end = dt.date(reference_year + 1, end_month, 1) if margin_months else dt.date(reference_year + 1, 1, 1)
    n = (end - start).days // step_days
    return np.datetime64(start, "D") + np.arange(n) * np.timedelta64(step_days, "D")


def _days(times: np.ndarray) -> np.ndarray:
    return ((np.asarray(times).astype("datetime64[s]") - _EPOCH) / np.timedelta64(1, "D")).astype(np.float64)


def valid_mask(scl: np.ndarray, mask_classes: Sequence[int], nodata_classes: Sequence[int]) -> np.ndarray:
    """True where an observation is usable: SCL not in the masked or no-data classes."""
    bad = np.asarray(sorted({*mask_classes, *nodata_classes}), dtype=scl.dtype)
    return ~np.isin(scl, bad)


@dataclass
class Bracket:
    """For every target step and pixel: the valid observations before/after and the weight of `after`.

    `before`/`after` are flat indices into a C-ordered (T, P) array, so one gather serves a feature.
    """

    before: np.ndarray  # (S, P) flat index
    after: np.ndarray  # (S, P) flat index
    weight: np.ndarray  # (S, P) float32
    empty: np.ndarray  # (P,) bool: no valid observation at all


def bracket(valid: np.ndarray, obs_days: np.ndarray, target_days: np.ndarray) -> Bracket:
    """Neighbouring valid observations of each target day, shared by every feature of a pixel.

    Outside the valid observations the nearest one is held (weight 0).
    """
    t, p = valid.shape
    s = target_days.size
    itype = np.int16 if t < 32000 else np.int32
    order = np.arange(t, dtype=itype)[:, None]
    last = np.maximum.accumulate(np.where(valid, order, itype(-1)), axis=0)
    nxt = np.minimum.accumulate(np.where(valid, order, itype(t))[::-1], axis=0)[::-1]
    k = np.searchsorted(obs_days, target_days, side="right") - 1  # last observation on or before the step
    before = np.full((s, p), -1, itype)
    after = np.full((s, p), t, itype)
    has = k >= 0
    before[has] = last[k[has]]
    has = k + 1 < t
    after[has] = nxt[k[has] + 1]
    before = np.where(before < 0, after, before)
    after = np.where(after >= t, before, after)
    empty = np.asarray(~valid.any(axis=0))
    np.clip(before, 0, t - 1, out=before)
    np.clip(after, 0, t - 1, out=after)
    days = np.asarray(obs_days, np.float64)
    d0 = days[before]
    span = days[after] - d0
    w = np.where(span > 0, (target_days[:, None] - d0) / np.where(span > 0, span, 1), 0.0).astype(np.float32)
    ftype = np.int32 if t * p < 2**31 else np.int64
    col = np.arange(p, dtype=ftype)
    return Bracket(before.astype(ftype) * p + col, after.astype(ftype) * p + col, w, empty)


def interpolate(values: np.ndarray, br: Bracket) -> np.ndarray:
    """(T, P) values (anything at invalid observations) to (S, P) at the target steps; NaN if empty."""
    flat = np.ascontiguousarray(values, dtype=np.float32).ravel()
    v0 = flat[br.before]
    out = v0 + (flat[br.after] - v0) * br.weight
    out[:, br.empty] = np.nan
    return out


def _normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    s = a + b
    return np.where(s != 0, (a - b) / np.where(s != 0, s, 1), 0).astype(np.float32)


def series_features(
    dn: dict[str, np.ndarray],
    scl: np.ndarray,
    offsets: np.ndarray,
    obs_days: np.ndarray,
    target_days: np.ndarray,
    cfg: FeatureConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated features (F, S, P) float32 and data score (P,) uint16 from (T, P) inputs."""
    valid = valid_mask(scl, cfg.mask_classes, cfg.nodata_classes)
    for b in cfg.needed_bands:
        valid &= dn[b] > 0
    br = bracket(valid, obs_days, target_days)
    off = offsets.astype(np.float32)[:, None]
    refl_cache: dict[str, np.ndarray] = {}

    def refl(b: str) -> np.ndarray:
        if b not in refl_cache:
            refl_cache[b] = (dn[b].astype(np.float32) + off) / np.float32(s2.QUANTIFICATION_VALUE)
        return refl_cache[b]

    out = np.empty((len(cfg.names), target_days.size, scl.shape[1]), np.float32)
    for i, name in enumerate(cfg.names):
        if name in INDICES:
            a, b = INDICES[name]
            out[i] = interpolate(_normalised_difference(refl(a), refl(b)), br)
        else:
            out[i] = interpolate(refl(name), br)
            if name not in {x for pair in (INDICES[j] for j in cfg.indices) for x in pair}:
                refl_cache.pop(name, None)
    return out, valid.sum(axis=0).astype(np.uint16)


def nan_quantiles(values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Quantiles over axis 0 ignoring NaN, numpy's 'linear' method: (Q, P) float32."""
    srt = np.sort(values, axis=0)  # NaN last
    n = (~np.isnan(values)).sum(axis=0)
    out = np.empty((len(qs), values.shape[1]), np.float32)
    for i, q in enumerate(qs):
        pos = q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        frac = (pos - lo).astype(np.float32)
        v0 = np.take_along_axis(srt, lo[None], axis=0)[0]
        v1 = np.take_along_axis(srt, hi[None], axis=0)[0]
        out[i] = np.where(n > 0, v0 + (v1 - v0) * frac, np.nan)
    return out


def harmonic_design(days: np.ndarray, harmonics: int, poly_degree: int, centre: float) -> np.ndarray:
    """Design matrix (T, K): 1, t, …, t^d, cos/sin(2πkt) with t in years from `centre`."""
    t = (days - centre) / 365.25
    cols = [t**p for p in range(poly_degree + 1)]
    for k in range(1, harmonics + 1):
        cols += [np.cos(2 * np.pi * k * t), np.sin(2 * np.pi * k * t)]
    return np.stack(cols, axis=1).astype(np.float64)


def harmonic_fit(values: np.ndarray, valid: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (K, P) per pixel over its valid observations; NaN if too few."""
    w = valid.astype(np.float64)
    y = np.where(valid, values, 0.0).astype(np.float64)
    xtx = np.einsum("tk,tl,tp->pkl", design, design, w, optimize=True)
    xty = np.einsum("tk,tp->pk", design, w * y, optimize=True)
    k = design.shape[1]
    xtx += np.eye(k) * 1e-6
    coef = np.linalg.solve(xtx, xty[..., None])[..., 0].T
    coef[:, valid.sum(axis=0) <= k] = np.nan
    return coef.astype(np.float32)


def unet_features(
    dn: dict[str, np.ndarray], scl: np.ndarray, offsets: np.ndarray, obs_days: np.ndarray, cfg: FeatureConfig
) -> tuple[np.ndarray, list[str]]:
    """Band quantiles, NDVI harmonic coefficients and median NDVI: (N, P) float32 and their names."""
    valid = valid_mask(scl, cfg.mask_classes, cfg.nodata_classes)
    for b in {*cfg.quantile_bands, "B04", "B08"}:
        valid &= dn[b] > 0
    off = offsets.astype(np.float32)[:, None]

    def refl(b: str) -> np.ndarray:
        r = (dn[b].astype(np.float32) + off) / np.float32(s2.QUANTIFICATION_VALUE)
        return np.where(valid, r, np.nan)

    parts, names = [], []
    for b in cfg.quantile_bands:
        parts.append(nan_quantiles(refl(b), cfg.quantiles))
        names += [f"{b}_q{round(q * 100):02d}" for q in cfg.quantiles]
    ndvi = _normalised_difference(refl("B08"), refl("B04"))
    design = harmonic_design(
        obs_days, cfg.harmonics, cfg.poly_degree, float(obs_days.mean()) if obs_days.size else 0
    )
    parts.append(harmonic_fit(np.nan_to_num(ndvi), valid, design))
    names += [f"NDVI_c{k}" for k in range(design.shape[1])]
    parts.append(nan_quantiles(ndvi, [0.5]))
    names.append("NDVI_median")
    return np.concatenate(parts, axis=0), names


def _series_block(*blocks: np.ndarray, bands: list[str], offsets, obs_days, target_days, cfg) -> np.ndarray:  # type: ignore[no-untyped-def]
    *band_blocks, scl = blocks
    t, h, w = scl.shape
    dn = {b: a.reshape(t, h * w) for b, a in zip(bands, band_blocks, strict=True)}
    feats, score = series_features(dn, scl.reshape(t, h * w), offsets, obs_days, target_days, cfg)
    out = np.empty((feats.shape[0] * feats.shape[1] + 1, h, w), np.float32)
    out[:-1] = feats.reshape(-1, h, w)
    out[-1] = score.reshape(h, w)
    return out


def _unet_block(*blocks: np.ndarray, bands: list[str], offsets, obs_days, cfg) -> np.ndarray:  # type: ignore[no-untyped-def]
    *band_blocks, scl = blocks
    t, h, w = scl.shape
    dn = {b: a.reshape(t, h * w) for b, a in zip(bands, band_blocks, strict=True)}
    feats, _ = unet_features(dn, scl.reshape(t, h * w), offsets, obs_days, cfg)
    return feats.reshape(-1, h, w)


def _inputs(stack: xr.Dataset, bands: list[str]) -> list[da.Array]:
    missing = [b for b in [*bands, "SCL"] if b not in stack.data_vars]
    if missing:
        raise FeatureError(f"the stack lacks {missing}; load it with these bands")
    arrays = []
    for b in [*bands, "SCL"]:
        a = stack[b].data
        if not isinstance(a, da.Array):
            a = da.from_array(a, chunks=(-1, 256, 256))
        arrays.append(a.rechunk({0: -1}))
    ref = arrays[0].chunks[1:]
    return [a.rechunk({1: ref[0], 2: ref[1]}) for a in arrays]


def _offsets(stack: xr.Dataset) -> np.ndarray:
    if "boa_offset" in stack.coords:
        return np.asarray(stack["boa_offset"].values, np.int32)
    return np.zeros(stack.sizes["time"], np.int32)


def timeseries_features(
    stack: xr.Dataset, reference_year: int, cfg: FeatureConfig | None = None
) -> xr.Dataset:
    """Lazy features (feature, step, y, x) float32 (NaN = nodata) and data_score (y, x) uint16."""
    cfg = cfg or FeatureConfig()
    steps = time_steps(reference_year, cfg.step_days, cfg.margin_months)
    t0, t1 = steps[0], steps[-1] + np.timedelta64(cfg.step_days, "D")
    stack = stack.sel(time=slice(str(t0), str(t1)))
    if stack.sizes["time"] == 0:
        raise FeatureError(f"no acquisition between {t0} and {t1} for reference year {reference_year}")
    bands = cfg.needed_bands
    arrays = _inputs(stack, bands)
    nf, ns = len(cfg.names), steps.size
    out = da.map_blocks(
        _series_block,
        *arrays,
        bands=bands,
        offsets=_offsets(stack),
        obs_days=_days(stack.time.values),
        target_days=_days(steps),
        cfg=cfg,
        dtype=np.float32,
        chunks=((nf * ns + 1,), *arrays[0].chunks[1:]),
        meta=np.array((), np.float32),
    )
    feats = out[:-1].reshape((nf, ns, *out.shape[1:]))
    coords = {"feature": cfg.names, "step": steps, "y": stack.y, "x": stack.x}
    ds = xr.Dataset(
        {
            "features": (("feature", "step", "y", "x"), feats),
            "data_score": (("y", "x"), out[-1].astype(np.uint16)),
        },
        coords=coords,
    )
    if "spatial_ref" in stack.coords:
        ds = ds.assign_coords(spatial_ref=stack.spatial_ref)
    ds["features"].attrs["nodata"] = float("nan")
    return ds


def unet_inputs(stack: xr.Dataset, cfg: FeatureConfig | None = None) -> xr.DataArray:
    """Lazy U-Net inputs (feature, y, x): band quantiles, NDVI harmonic coefficients, median NDVI."""
    cfg = cfg or FeatureConfig()
    bands = list(dict.fromkeys([*cfg.quantile_bands, "B04", "B08"]))
    arrays = _inputs(stack, bands)
    probe = {b: np.zeros((1, 1), np.uint16) for b in bands}
    _, names = unet_features(probe, np.zeros((1, 1), np.uint8), np.zeros(1), np.zeros(1), cfg)
    out = da.map_blocks(
        _unet_block,
        *arrays,
        bands=bands,
        offsets=_offsets(stack),
        obs_days=_days(stack.time.values),
        cfg=cfg,
        dtype=np.float32,
        chunks=((len(names),), *arrays[0].chunks[1:]),
        meta=np.array((), np.float32),
    )
    da_ = xr.DataArray(out, dims=("feature", "y", "x"), coords={"feature": names, "y": stack.y, "x": stack.x})
    if "spatial_ref" in stack.coords:
        da_ = da_.assign_coords(spatial_ref=stack.spatial_ref)
    return da_
