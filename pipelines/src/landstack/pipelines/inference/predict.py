"""The streaming predictor: a roll-out tile, window by window, through features and models.

For each window: read the Sentinel-2 stack's bands and SCL (only that window, all dates) → mask →
the 54-step series (pixel models) or quantiles + NDVI harmonics (patch models) → the model of each
production unit whose (buffered) area the window touches → write the window of every output
raster. Features never exist for more than one window, so peak memory follows the window size,
not the tile size. Pixels without a valid observation are never sent to a model and stay nodata.

Outputs (GeoTIFFs on the tile grid, one per model output and unit):
- class probabilities: uint8, 0–250 = 0–1, nodata 255, one band per class (band description = code);
- regression values (IMD %, built-up m²): float32, NaN nodata, one band per target;
- data score: uint16 valid observations in the reference period, 65535 outside the tile's data area;
- NDVI / NDWI medians over the reference year (float32, NaN nodata), for the built-up
  post-processing (greenness, water-commission correction);
- with production units, `units`: the uint16 unit index (0 = none).

Reading: from a `direct.DirectStack` (one windowed read per asset and window, straight from the
COGs: the fast path) or from a lazy odc-stac stack chunked with `stack_block(...)`, which
`reading.StackReader` reads about once per chunk although windows overlap. Features: numpy on the
host, or torch on the local backend's CUDA device (`features_torch`), where only digital numbers
and SCL cross the bus.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.windows
import xarray as xr

from landstack.catalog.grid import TileGrid
from landstack.pipelines.errors import FeatureError, PipelineError
from landstack.pipelines.features import (
    INDICES,
    FeatureConfig,
    _days,
    _normalised_difference,
    nan_quantiles,
    series_features,
    time_steps,
    unet_features,
    valid_mask,
)
from landstack.pipelines.inference.backends import Backend, ModelInfo
from landstack.pipelines.inference.direct import DirectStack
from landstack.pipelines.inference.reading import StackReader, WindowReader, block_size
from landstack.pipelines.inference.windows import TileWindow, padded_shape, windows

log = logging.getLogger(__name__)

PROB_SCALE = 250
PROB_NODATA = 255
SCORE_NODATA = 65535


@dataclass(frozen=True)
class UnitModel:
    """The model one production unit uses, and where it applies on the tile (True = predict here)."""

    unit: str
    model: ModelInfo
    area: np.ndarray | None = None  # (H, W) bool over the tile; None = everywhere


@dataclass(frozen=True)
class Job:
    """One output family of the tile: its name (the asset key stem) and the model per unit.

    Asset keys: `output` for a single unit, else (or with `per_unit`) ``<output>-<unit>``.
    """

    output: str
    units: Sequence[UnitModel]
    per_unit: bool = False
    classes: tuple[str, ...] = ()  # the product's class codes: a classifier's bands, whatever it learnt

    def key(self, u: UnitModel) -> str:
        return f"{self.output}-{u.unit}" if self.per_unit or len(self.units) > 1 else self.output

    def bands(self, u: UnitModel) -> list[str]:
        """Band names of a unit's output: the product's classes for classifiers, else the model's."""
        if self.classes and u.model.metadata.get("task") != "regression":
            return list(self.classes)
        return list(u.model.outputs)

    def expand(self, u: UnitModel, out: np.ndarray) -> np.ndarray:
        """A model's per-class output placed on the product's classes (0 for classes it never saw)."""
        bands = self.bands(u)
        if bands == list(u.model.outputs):
            return out
        unknown = sorted(set(u.model.outputs) - set(bands))
        if unknown:
            raise PipelineError(
                f"model {u.model.name!r} predicts classes {unknown} that product {self.output} does not "
                f"declare ({bands}); retrain it on the product's classes"
            )
        full = np.zeros((len(bands), *out.shape[1:]), out.dtype)
        for i, code in enumerate(u.model.outputs):
            full[bands.index(code)] = out[i]
        return full


@dataclass
class Prediction:
    """What was written: asset key → local file, and per-asset facts for the item."""

    files: dict[str, Path] = field(default_factory=dict)
    bands: dict[str, list[str]] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)  # asset key → model name:version
    valid_pixels: int = 0
    blocks_read: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # read / features / models / write

    def _add(self, stage: str, t0: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - t0
        return now


def _profile(grid: TileGrid, count: int, dtype: str, nodata: float) -> dict[str, Any]:
    return {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": count,
        "dtype": dtype,
        "nodata": nodata,
        "crs": grid.crs,
        "transform": grid.transform,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "predictor": 2 if dtype != "float32" else 3,
        "BIGTIFF": "IF_SAFER",
        # a 3- or 4-band uint8 file would default to RGB(A), and the COG step then reads the 4th
        # band (e.g. CISC's water probability) as an alpha mask and blanks its zero pixels
        "photometric": "MINISBLACK",
    }


class _Writers:
    """Open output rasters, filled with nodata, written window by window."""

    def __init__(self, folder: Path, grid: TileGrid) -> None:
        self.folder, self.grid = folder, grid
        self.open: dict[str, Any] = {}
        self.result = Prediction()
        self._stack = contextlib.ExitStack()

    def add(self, key: str, bands: list[str], dtype: str, nodata: float, model: str | None = None) -> None:
        path = self.folder / f"{key}.tif"
        dst = self._stack.enter_context(
            rasterio.open(path, "w", **_profile(self.grid, len(bands), dtype, nodata))
        )
        for i, name in enumerate(bands, start=1):
            dst.set_band_description(i, name)
        self.open[key] = dst
        self.result.files[key], self.result.bands[key] = path, bands
        if model:
            self.result.models[key] = model

    def write(self, key: str, w: TileWindow, data: np.ndarray) -> None:
        t0 = time.perf_counter()
        win = rasterio.windows.Window(w.cols.start, w.rows.start, w.cols.size, w.rows.size)
        self.open[key].write(data, window=win)
        self.result._add("write", t0)

    def close(self) -> None:
        self._stack.close()


def _encode_probabilities(p: np.ndarray, ok: np.ndarray) -> np.ndarray:
    out = np.full(p.shape, PROB_NODATA, np.uint8)
    out[:, ok] = np.clip(np.rint(p[:, ok] * PROB_SCALE), 0, PROB_SCALE).astype(np.uint8)
    return out


def _cuda_of(backend: Backend) -> str | None:
    """The backend's device when it is a CUDA device (features then run there too)."""
    device = getattr(backend, "device", None)
    return str(device) if device is not None and getattr(device, "type", "") == "cuda" else None


def window_layout(jobs: Sequence[Job], window: int, halo: int) -> tuple[int, int, int]:
    """(window, halo, pooling multiple) for the jobs: a halo only when a patch model runs."""
    multiple = 1
    patch = False
    for job in jobs:
        for u in job.units:
            multiple = max(multiple, u.model.pooling)
            patch |= u.model.is_patch_model
    size = -(-window // multiple) * multiple
    return size, (-(-halo // multiple) * multiple if patch and halo else 0), multiple


def stack_block(jobs: Sequence[Job], window: int, halo: int) -> int:
    """The chunk size to load the stack with so the predictor reads each chunk about once."""
    return block_size(*window_layout(jobs, window, halo))


class TilePredictor:
    """Predicts every job of one tile from a lazy Sentinel-2 stack on the tile grid."""

    def __init__(
        self,
        stack: xr.Dataset | DirectStack,
        grid: TileGrid,
        year: int,
        backend: Backend,
        *,
        window: int = 256,
        halo: int = 64,
        cfg: FeatureConfig | None = None,
        data_area: np.ndarray | None = None,
        progress: Callable[[int, int], None] | None = None,
        feature_device: str | None = None,
    ) -> None:
        """`stack`: a `DirectStack` or a lazy odc-stac Dataset on the tile grid. `feature_device`:
        compute features with torch on this device (default: the local backend's device when it
        is CUDA, so only digital numbers and SCL cross the bus)."""
        if (stack.sizes["y"], stack.sizes["x"]) != grid.shape:
            raise FeatureError(
                f"the stack is {stack.sizes['y']}x{stack.sizes['x']}, the tile grid {grid.shape}"
            )
        self.cfg = cfg or FeatureConfig()
        self.grid, self.year, self.backend = grid, year, backend
        self.window, self.halo = window, halo
        self.data_area = data_area
        self.progress = progress
        device = feature_device or _cuda_of(backend)
        self.device: Any = None
        self._timing = Prediction()
        if device is not None:
            import torch

            self.device = torch.device(device)
        steps = time_steps(year, self.cfg.step_days, self.cfg.margin_months)
        t0, t1 = steps[0], steps[-1] + np.timedelta64(self.cfg.step_days, "D")
        self.stack: xr.Dataset | DirectStack
        if isinstance(stack, DirectStack):
            self.stack = stack.between(t0, t1)
            times, offsets = self.stack.times, self.stack.offsets
        else:
            self.stack = stack.sel(time=slice(str(t0), str(t1)))
            times = self.stack.time.values
            offsets = (
                np.asarray(self.stack["boa_offset"].values, np.int32)
                if "boa_offset" in self.stack.coords
                else np.zeros(times.size, np.int32)
            )
        if self.stack.sizes["time"] == 0:
            raise FeatureError(f"no acquisition between {t0} and {t1} for reference year {year}")
        self.obs_days = _days(times)
        self.target_days = _days(steps)
        self.in_year = (times >= np.datetime64(f"{year}-01-01")) & (
            times < np.datetime64(f"{year + 1}-01-01")
        )
        self.offsets = offsets
        self.bands = list(
            dict.fromkeys([*self.cfg.needed_bands, *self.cfg.quantile_bands, "B03", "B04", "B08"])
        )

    # -- per window ---------------------------------------------------------------------------

    def _layout(self, jobs: Sequence[Job]) -> tuple[int, int, int]:
        return window_layout(jobs, self.window, self.halo)

    def block(self, jobs: Sequence[Job]) -> int:
        """The chunk size the stack should have for these jobs (see `reading.block_size`)."""
        return block_size(*self._layout(jobs))

    def _reader(self, jobs: Sequence[Job]) -> WindowReader:
        if isinstance(self.stack, DirectStack):
            return self.stack.reader(self.bands)
        return StackReader(self.stack, self.bands, self.block(jobs))

    def _windows(self, jobs: Sequence[Job]) -> Iterator[TileWindow]:
        size, halo, multiple = self._layout(jobs)
        yield from windows(self.grid.shape, size, halo, multiple)

    def _series(self, dn: dict[str, Any], scl: Any, core: tuple[slice, slice]) -> tuple[Any, np.ndarray]:
        """(F, S, P) features (numpy, or torch on the feature device) and the (h, w) data score."""
        t, h, w = scl[:, core[0], core[1]].shape
        flat = {b: dn[b][:, core[0], core[1]].reshape(t, h * w) for b in self.cfg.needed_bands}
        s = scl[:, core[0], core[1]].reshape(t, h * w)
        if self.device is not None:
            from landstack.pipelines.inference import features_torch as ft

            tfeats, tscore = ft.series_features(
                flat, s, self.offsets, self.obs_days, self.target_days, self.cfg
            )
            return tfeats, tscore.cpu().numpy().reshape(h, w)
        feats, score = series_features(flat, s, self.offsets, self.obs_days, self.target_days, self.cfg)
        return feats, score.reshape(h, w)

    def _medians(self, dn: dict[str, Any], scl: Any, core: tuple[slice, slice]) -> np.ndarray:
        yr = self.in_year
        t = int(yr.sum())
        h, w = scl[0, core[0], core[1]].shape
        if t == 0:
            return np.full((2, h, w), np.nan, np.float32)
        sel = np.flatnonzero(yr)
        s = scl[sel][:, core[0], core[1]].reshape(t, -1)
        if self.device is not None:
            from landstack.pipelines.inference import features_torch as ft

            valid_t = ft.valid_mask(s, self.cfg)
            off_t = ft.offsets_tensor(self.offsets[yr], s.device)

            def refl_t(b: str) -> Any:
                d = dn[b][sel][:, core[0], core[1]].reshape(t, -1)
                return ft.masked_reflectance(d, off_t, valid_t & (d > 0))

            meds = [
                ft.nan_quantiles(
                    ft.normalised_difference(refl_t(INDICES[n][0]), refl_t(INDICES[n][1])), [0.5]
                )[0]
                for n in ("NDVI", "NDWI")
            ]
            return np.stack([m.cpu().numpy() for m in meds]).reshape(2, h, w)
        valid = valid_mask(s, self.cfg.mask_classes, self.cfg.nodata_classes)
        off = self.offsets[yr].astype(np.float32)[:, None]

        def refl(b: str) -> np.ndarray:
            d = dn[b][yr][:, core[0], core[1]].reshape(t, -1)
            return np.where(valid & (d > 0), (d.astype(np.float32) + off) / np.float32(10000), np.nan)

        out = []
        for name in ("NDVI", "NDWI"):
            a, b = INDICES[name]
            out.append(nan_quantiles(_normalised_difference(refl(a), refl(b)), [0.5])[0])
        return np.stack(out).reshape(2, h, w)

    def _patch_features(self, dn: dict[str, Any], scl: Any) -> tuple[Any, list[str]]:
        yr = self.in_year
        sel = np.flatnonzero(yr)
        t = sel.size
        _, h, w = scl.shape
        bands = dict.fromkeys([*self.cfg.quantile_bands, "B04", "B08"])
        flat = {b: dn[b][sel].reshape(t, h * w) for b in bands}
        s = scl[sel].reshape(t, h * w)
        if self.device is not None:
            from landstack.pipelines.inference import features_torch as ft

            return ft.unet_features(flat, s, self.offsets[yr], self.obs_days[yr], self.cfg)
        return unet_features(flat, s, self.offsets[yr], self.obs_days[yr], self.cfg)

    def _patch_input(self, feats: Any, names: list[str], shape: tuple[int, int], model: ModelInfo) -> Any:
        h, w = shape
        index = {n: i for i, n in enumerate(names)}
        missing = [f for f in model.features if f not in index]
        if missing:
            raise PipelineError(
                f"model {model.name!r} needs features {missing} that the predictor does not compute"
            )
        x = feats[[index[f] for f in model.features]].reshape(len(model.features), h, w)
        ph, pw = padded_shape(h, w, model.pooling)
        if (ph, pw) != (h, w):
            if self.device is not None:
                import torch.nn.functional as tf

                x = tf.pad(x, (0, pw - w, 0, ph - h), value=float("nan"))
            else:
                x = np.pad(x, ((0, 0), (0, ph - h), (0, pw - w)), constant_values=np.nan)
        return x[None]

    # -- the tile -----------------------------------------------------------------------------

    def run(self, jobs: Sequence[Job], folder: Path, unit_index: np.ndarray | None = None) -> Prediction:
        """Predict every job over the tile; returns the local output files.

        `unit_index` (uint16 on the tile, 0 = no unit) is written as the `units` asset.
        """
        folder.mkdir(parents=True, exist_ok=True)
        writers = _Writers(folder, self.grid)
        self._timing = writers.result
        start = time.perf_counter()
        reader = self._reader(jobs)
        try:
            writers.add("data-score", ["data_score"], "uint16", SCORE_NODATA)
            writers.add("medians", ["NDVI_median", "NDWI_median"], "float32", float("nan"))
            if unit_index is not None:
                writers.add("units", ["unit_index"], "uint16", 0)
            for job in jobs:
                for u in job.units:
                    key = job.key(u)
                    regression = u.model.metadata.get("task") == "regression"
                    writers.add(
                        key,
                        job.bands(u),
                        "float32" if regression else "uint8",
                        float("nan") if regression else PROB_NODATA,
                        f"{u.model.name}:{u.model.version}",
                    )
            all_windows = list(self._windows(jobs))
            for n, w in enumerate(all_windows, start=1):
                self._window(w, jobs, writers, reader)
                if unit_index is not None:
                    writers.write(
                        "units", w, unit_index[w.rows.start : w.rows.stop, w.cols.start : w.cols.stop][None]
                    )
                if self.progress:
                    self.progress(n, len(all_windows))
        finally:
            writers.close()
            reader.close()
        log.info("read %d stack blocks / asset windows for %d windows", reader.blocks_read, len(all_windows))
        writers.result.blocks_read = reader.blocks_read
        sec = writers.result.seconds
        sec["features"] = (
            time.perf_counter() - start - sum(sec.get(k, 0.0) for k in ("read", "models", "write"))
        )
        return writers.result

    def _window(self, w: TileWindow, jobs: Sequence[Job], writers: _Writers, reader: WindowReader) -> None:
        dn: dict[str, Any]
        scl: Any
        t0 = time.perf_counter()
        dn, scl = reader.read(w.read_rows, w.read_cols)
        writers.result._add("read", t0)
        if self.device is not None:
            from landstack.pipelines.inference.features_torch import to_device

            dn, scl = to_device(dn, scl, self.device)  # only DNs and SCL cross the bus
        core = w.core_in_read
        rows, cols = slice(w.rows.start, w.rows.stop), slice(w.cols.start, w.cols.stop)
        feats, score = self._series(dn, scl, core)
        inside = np.ones(score.shape, bool) if self.data_area is None else self.data_area[rows, cols]
        ok = (score > 0) & inside
        writers.result.valid_pixels += int(ok.sum())
        writers.write("data-score", w, np.where(inside, score, SCORE_NODATA).astype(np.uint16)[None])
        med = self._medians(dn, scl, core)
        writers.write("medians", w, np.where(ok[None], med, np.nan).astype(np.float32))
        patch: tuple[Any, list[str]] | None = None  # patch features, once per window
        for job in jobs:
            for u in job.units:
                key = job.key(u)
                here = ok if u.area is None else ok & u.area[rows, cols]
                regression = u.model.metadata.get("task") == "regression"
                if not here.any():
                    nodata = np.float32(np.nan) if regression else np.uint8(PROB_NODATA)
                    writers.write(key, w, np.full((len(job.bands(u)), *here.shape), nodata))
                    continue
                if u.model.is_patch_model:
                    if patch is None:
                        patch = self._patch_features(dn, scl)
                    out = self._predict_patch(patch, scl.shape[1:], u.model, core)
                else:
                    out = self._predict_pixels(feats, here, u.model)
                if regression:
                    writers.write(key, w, np.where(here[None], out, np.nan).astype(np.float32))
                else:
                    writers.write(key, w, _encode_probabilities(job.expand(u, out), here))

    def _predict_pixels(self, feats: Any, here: np.ndarray, model: ModelInfo) -> np.ndarray:
        h, w = here.shape
        out = np.zeros((len(model.outputs), h * w), np.float32)
        idx = np.flatnonzero(here.ravel())
        if idx.size:
            names = self.cfg.names
            missing = [f for f in model.features if f not in names]
            if missing:
                raise PipelineError(
                    f"model {model.name!r} needs features {missing}; the predictor computes {names}"
                )
            order = [names.index(f) for f in model.features]
            steps = int(model.metadata["input"]["time_steps"])
            if steps != feats.shape[1]:
                raise PipelineError(
                    f"model {model.name!r} takes {steps} time steps, the series has {feats.shape[1]}"
                )
            if self.device is not None:
                import torch

                sel = torch.from_numpy(idx).to(self.device)
                x = feats[order][:, :, sel].permute(2, 0, 1).contiguous()
            else:
                x = np.ascontiguousarray(feats[order][:, :, idx].transpose(2, 0, 1))
            t0 = time.perf_counter()
            out[:, idx] = self.backend.predict(model, x).T
            self._timing._add("models", t0)
        return out.reshape(-1, h, w)

    def _predict_patch(
        self,
        patch: tuple[Any, list[str]],
        shape: tuple[int, int],
        model: ModelInfo,
        core: tuple[slice, slice],
    ) -> np.ndarray:
        h, w = shape
        x = self._patch_input(patch[0], patch[1], shape, model)
        t0 = time.perf_counter()
        y = self.backend.predict(model, x)[0][:, :h, :w]
        self._timing._add("models", t0)
        return y[:, core[0], core[1]].astype(np.float32)
