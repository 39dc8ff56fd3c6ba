"""Synthetic training data for the model tests: noisy but separable class time series and patches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
FEATURES = ("B04", "B08", "B11", "NDVI")


def synthetic_table(
    n_per_class: int = 60,
    classes: tuple[int, ...] = tuple(range(1, 12)),
    time_steps: int = 12,
    features: tuple[str, ...] = FEATURES,
    noise: float = 0.35,
    label_noise: float = 0.0,
    samples_per_group: int = 10,
    seed: int = 0,
    phenology_shift: float = 0.03,
) -> pd.DataFrame:
    """A wide training table (label, group, x, y, <feature>_<t>) of separable but noisy classes.

    Every class has a seasonal profile per feature (level, amplitude, phase); samples add a group
    effect (shared by the samples of one polygon), per-sample phenology shifts (share of a year)
    and white noise. With
    `label_noise` that share of labels is replaced by a different random class.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(time_steps) / time_steps
    proto_rng = np.random.default_rng(1234)
    proto = {
        c: (
            proto_rng.uniform(-1, 1, len(features)),
            proto_rng.uniform(0, 1, len(features)),
            proto_rng.uniform(0, 2 * np.pi, len(features)),
        )
        for c in classes
    }
    rows, labels, groups, xy = [], [], [], []
    gid = 0
    for c in classes:
        level, amp, phase = proto[c]
        for start in range(0, n_per_class, samples_per_group):
            gid += 1
            g_off = rng.normal(0, noise / 2, len(features))
            cx, cy = rng.uniform(4.0e6, 4.5e6), rng.uniform(2.8e6, 3.2e6)
            for _ in range(min(samples_per_group, n_per_class - start)):
                shift = rng.normal(0, phenology_shift)
                curve = (
                    level[:, None]
                    + g_off[:, None]
                    + amp[:, None] * np.sin(2 * np.pi * (t[None, :] + shift) + phase[:, None])
                )
                curve = curve + rng.normal(0, noise, curve.shape)
                rows.append(curve.ravel())
                labels.append(c)
                groups.append(f"g{gid}")
                xy.append((cx + rng.normal(0, 200), cy + rng.normal(0, 200)))
    labels_arr = np.array(labels)
    if label_noise > 0:
        flip = rng.random(len(labels_arr)) < label_noise
        for i in np.flatnonzero(flip):
            labels_arr[i] = rng.choice([c for c in classes if c != labels_arr[i]])
    cols = [f"{f}_{i}" for f in features for i in range(time_steps)]
    df = pd.DataFrame(np.array(rows, dtype=np.float32), columns=cols)
    xy_arr = np.array(xy)
    df.insert(0, "y", xy_arr[:, 1])
    df.insert(0, "x", xy_arr[:, 0])
    df.insert(0, "group", groups)
    df.insert(0, "label", labels_arr)
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def synthetic_imd_patches(
    n: int = 48, size: int = 32, channels: int = 4, noise: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Feature patches (N, C, H, W) and an imperviousness target (N, 1, H, W) in 0..100.

    The target is a smooth random field; features are noisy non-linear responses to it, so a
    small U-Net can learn the mapping.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    targets, feats = [], []
    for _ in range(n):
        field = np.zeros((size, size))
        for _ in range(3):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.35)
            field += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r**2))
        imd = np.clip(field / max(field.max(), 1e-6) * 120 - 20, 0, 100)
        f = imd / 100
        stack = [
            0.1 + 0.2 * f,
            0.4 - 0.3 * f,
            np.sqrt(f) * 0.5,
            0.8 - 0.7 * f**2,
        ][:channels]
        stack = [s + rng.normal(0, noise * 0.3, s.shape) for s in stack]
        targets.append(imd[None].astype(np.float32))
        feats.append(np.stack(stack).astype(np.float32))
    return np.stack(feats), np.stack(targets)


def synthetic_class_patches(n: int = 32, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Feature patches (N, 4, H, W) and CISC class codes 0..3 per pixel (255 = no data at the border)."""
    rng = np.random.default_rng(seed)
    feats, labels = [], []
    means = np.array(
        [[0.3, 0.3, 0.3, 0.1], [0.2, 0.2, 0.5, 0.0], [0.05, 0.5, 0.2, 0.7], [0.02, 0.02, 0.01, -0.3]]
    )
    for _ in range(n):
        cls = np.zeros((size, size), dtype=np.int64)
        for code in (1, 2, 3):
            cx, cy = (int(v) for v in rng.integers(0, size, 2))
            r = int(rng.integers(4, 12))
            yy, xx = np.ogrid[:size, :size]
            cls[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = code
        x = means[cls].transpose(2, 0, 1) + rng.normal(0, 0.06, (4, size, size))
        cls[0, :] = 255
        feats.append(x.astype(np.float32))
        labels.append(cls)
    return np.stack(feats), np.stack(labels)


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    path = tmp_path / "samples.csv"
    synthetic_table(n_per_class=40).to_csv(path, index=False)
    return path


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip(f"shared reference data not found at {SHARED} (only present on development/CI machines)")
    return SHARED
