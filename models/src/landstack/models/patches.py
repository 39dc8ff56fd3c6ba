"""Patch sets for the U-Net and the impervious CNN.

On disk a patch set is one ``.npz`` file with the arrays:

- ``x``: float32 (N, C, H, W) raw features (band quantiles, NDVI harmonics, ...), NaN = missing;
- ``y``: float32 (N, K, H, W) regression targets in 0..100 (NaN = no data), or integer
  (N, H, W) class codes (255 = no data) for segmentation;
- ``channels``: str (C,) feature names; ``targets``: str (K,) target names (regression only);
- optional ``group``: (N,) id of the area a patch comes from (grouped hold-out splits).

:func:`sample_patches` cuts such a set from rasters: feature rasters (bands stacked in file
order) and a truth raster on the same grid, read window by window with rasterio, so memory is
bounded by the patch count, not the raster size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landstack.models.errors import SamplesError

NODATA_CLASS = 255


@dataclass
class PatchSet:
    """Patches as arrays (see the module docstring)."""

    x: np.ndarray
    y: np.ndarray
    channels: list[str]
    targets: list[str]
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def is_regression(self) -> bool:
        return bool(np.issubdtype(self.y.dtype, np.floating))

    def subset(self, index: np.ndarray) -> PatchSet:
        return PatchSet(
            self.x[index],
            self.y[index],
            self.channels,
            self.targets,
            None if self.groups is None else self.groups[index],
        )

    def validate(self, name: str = "patch set") -> None:
        """Raise SamplesError when the arrays do not fit together."""
        if self.x.ndim != 4:
            raise SamplesError(f"{name}: x must be (N, C, H, W), got shape {self.x.shape}")
        n, c, h, w = self.x.shape
        if n == 0:
            raise SamplesError(f"{name} has no patches")
        if len(self.channels) != c:
            raise SamplesError(f"{name}: {len(self.channels)} channel names for {c} channels in x")
        if self.is_regression:
            if self.y.ndim != 4 or self.y.shape[0] != n or self.y.shape[2:] != (h, w):
                raise SamplesError(
                    f"{name}: regression y must be (N, K, H, W) = ({n}, K, {h}, {w}), got {self.y.shape}"
                )
            if len(self.targets) != self.y.shape[1]:
                raise SamplesError(
                    f"{name}: {len(self.targets)} target names for {self.y.shape[1]} targets in y"
                )
        elif self.y.shape != (n, h, w):
            raise SamplesError(f"{name}: class y must be (N, H, W) = ({n}, {h}, {w}), got {self.y.shape}")


def save_patches(path: str | Path, patches: PatchSet) -> Path:
    """Write a patch set as .npz (atomically)."""
    patches.validate()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp.npz")
    arrays = {
        "x": patches.x.astype(np.float32),
        "y": patches.y,
        "channels": np.array(patches.channels, dtype=str),
        "targets": np.array(patches.targets, dtype=str),
    }
    if patches.groups is not None:
        arrays["group"] = patches.groups
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(p)
    return p


def load_patches(path: str | Path) -> PatchSet:
    """Read a .npz patch set (see the module docstring)."""
    p = Path(path)
    if not p.exists():
        raise SamplesError(f"patch set {p} does not exist")
    try:
        with np.load(p, allow_pickle=False) as z:
            if "x" not in z or "y" not in z:
                raise SamplesError(f"patch set {p} needs arrays 'x' and 'y'; found {list(z.keys())}")
            x, y = z["x"].astype(np.float32), z["y"]
            channels = (
                [str(c) for c in z["channels"]] if "channels" in z else [f"f{i}" for i in range(x.shape[1])]
            )
            targets = [str(t) for t in z["targets"]] if "targets" in z else []
            groups = z.get("group", None)
    except SamplesError:
        raise
    except Exception as e:
        raise SamplesError(f"cannot read patch set {p}: {e}; write it with save_patches") from e
    if np.issubdtype(y.dtype, np.floating) and not targets and y.ndim == 4:
        targets = [f"target{i}" for i in range(y.shape[1])]
    ps = PatchSet(x, y, channels, targets, groups)
    ps.validate(str(p))
    return ps


def _open_all(paths: Sequence[str | Path]) -> list:
    import rasterio
    from rasterio.errors import RasterioIOError

    out = []
    for p in paths:
        try:
            out.append(rasterio.open(str(p)))
        except RasterioIOError as e:
            for ds in out:
                ds.close()
            raise SamplesError(
                f"cannot open raster {p}: {e}; check the path and that it is a GeoTIFF/COG"
            ) from e
    return out


def sample_patches(
    feature_paths: Sequence[str | Path],
    truth_path: str | Path,
    patch_size: int = 64,
    n_patches: int = 200,
    task: str = "regression",
    seed: int = 0,
    max_nodata_fraction: float = 0.5,
    target_names: Sequence[str] | None = None,
) -> PatchSet:
    """Random patches from feature rasters (on one grid) and a truth raster.

    A truth raster on another grid is warped onto the features' grid as it is read (nearest for
    classes, average for regression targets). Regression truth keeps every band as a target
    (no-data -> NaN; targets named by the band descriptions, else the file name); class truth uses
    band 1 (no-data -> 255). Patches with more than `max_nodata_fraction` no-data truth are skipped.
    """
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    feats = _open_all(feature_paths)
    (truth_file,) = _open_all([truth_path])
    truth = truth_file
    try:
        ref = feats[0] if feats else truth_file
        for ds in feats:
            if ds.crs != ref.crs or ds.transform != ref.transform or ds.shape != ref.shape:
                raise SamplesError(
                    f"feature raster {ds.name} (CRS {ds.crs}, {ds.shape}) is not on the grid of feature "
                    f"raster {ref.name} (CRS {ref.crs}, {ref.shape}); write the features on one grid"
                )
        if (truth_file.crs, truth_file.transform, truth_file.shape) != (ref.crs, ref.transform, ref.shape):
            from rasterio.warp import transform_bounds

            tb = transform_bounds(truth_file.crs, ref.crs, *truth_file.bounds)
            rb = ref.bounds
            if tb[0] >= rb[2] or tb[2] <= rb[0] or tb[1] >= rb[3] or tb[3] <= rb[1]:
                raise SamplesError(
                    f"truth raster {truth_file.name} does not overlap the grid of feature raster {ref.name}; "
                    "give a truth raster covering the features"
                )
            truth = WarpedVRT(
                truth_file,
                crs=ref.crs,
                transform=ref.transform,
                width=ref.width,
                height=ref.height,
                resampling=Resampling.average if task == "regression" else Resampling.nearest,
            )
        h, w = ref.shape
        if h < patch_size or w < patch_size:
            raise SamplesError(f"truth raster {ref.name} ({h}x{w}) is smaller than one {patch_size}px patch")
        channels = [
            (ds.descriptions[i] or f"{Path(ds.name).stem}_b{i + 1}") for ds in feats for i in range(ds.count)
        ]
        rng = np.random.default_rng(seed)
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        attempts = 0
        while len(xs) < n_patches and attempts < n_patches * 10:
            attempts += 1
            r, c = int(rng.integers(0, h - patch_size + 1)), int(rng.integers(0, w - patch_size + 1))
            win = Window(c, r, patch_size, patch_size)
            if task == "regression":
                t = truth.read(window=win, masked=True).astype(np.float32).filled(np.nan)
                bad = float(np.mean(~np.isfinite(t)))
            else:
                m = truth.read(1, window=win, masked=True)
                t = m.filled(NODATA_CLASS).astype(np.int64)
                bad = float(np.mean(np.ma.getmaskarray(m)))
            if bad > max_nodata_fraction:
                continue
            x = np.concatenate(
                [ds.read(window=win, masked=True).astype(np.float32).filled(np.nan) for ds in feats]
            )
            xs.append(x)
            ys.append(t)
        if not xs:
            raise SamplesError(
                f"no patch of {ref.name} has less than {max_nodata_fraction:.0%} no-data truth"
            )
        stem = Path(str(truth_path)).stem
        described = [
            d or (stem if truth.count == 1 else f"{stem}{i}") for i, d in enumerate(truth_file.descriptions)
        ]
        targets = list(target_names) if target_names else described
        return PatchSet(np.stack(xs), np.stack(ys), channels, targets if task == "regression" else [])
    finally:
        for ds in [*feats, truth, truth_file]:
            ds.close()
