"""Clouds, their shadows and the scene classification layer of one synthetic acquisition.

Cloud fields are thresholded smooth noise on the 20 m SCL grid: thick cores (SCL 9) with medium
probability margins (SCL 8), occasional thin cirrus (SCL 10), and shadows (SCL 3) cast by the
clouds with a sun-dependent offset. Cover per acquisition follows a mixture of clear, broken and
overcast days, like a temperate climate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landstack.pipelines.synth.scene import smooth_noise

SCL_DARK, SCL_SHADOW, SCL_VEG, SCL_NOT_VEG, SCL_WATER, SCL_UNCLASSIFIED = 2, 3, 4, 5, 6, 7
SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS, SCL_SNOW = 8, 9, 10, 11


@dataclass
class Sky:
    """The atmosphere of one acquisition on the 20 m grid."""

    opacity: np.ndarray  # float32 0..1, how much the cloud spectrum replaces the surface
    shadow: np.ndarray  # bool
    scl_cloud: np.ndarray  # uint8: 0 clear, else 8/9/10

    @property
    def cover(self) -> float:
        """Cloud cover in percent (SCL 8, 9, 10)."""
        return float((self.scl_cloud > 0).mean() * 100)


def draw_cover(rng: np.random.Generator) -> float:
    """Target cloud fraction (0..1) of one acquisition."""
    kind = rng.random()
    if kind < 0.4:
        return float(rng.uniform(0.0, 0.04))
    if kind < 0.72:
        return float(rng.uniform(0.08, 0.6))
    return float(rng.uniform(0.6, 1.0))


def draw_sky(shape20: tuple[int, int], rng: np.random.Generator, cover: float | None = None) -> Sky:
    """Clouds, cirrus and shadows for a 20 m grid of `shape20`."""
    h, w = shape20
    target = draw_cover(rng) if cover is None else cover
    opacity = np.zeros(shape20, np.float32)
    scl = np.zeros(shape20, np.uint8)
    shadow = np.zeros(shape20, bool)
    if target > 0.001:
        field = smooth_noise(shape20, int(rng.integers(8, 30)), rng)
        field += 0.15 * smooth_noise(shape20, 3, rng)
        thr = np.quantile(field, 1 - target)
        core = np.quantile(field, 1 - 0.7 * target)
        cloud = field >= thr
        scl[cloud] = 8
        scl[field >= core] = 9
        opacity[cloud] = np.clip(0.55 + 2.0 * (field[cloud] - thr), 0.55, 0.97)
        # Shadows: the cloud mask moved away from the sun, where no cloud covers them.
        dy, dx = int(rng.integers(5, 20)), int(rng.integers(-12, 12))
        moved = np.zeros_like(cloud)
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        moved[yd, xd] = cloud[ys, xs]
        shadow = moved & ~cloud
    if rng.random() < 0.15:
        cirrus = (smooth_noise(shape20, 40, rng) > 0.7) & (scl == 0)
        scl[cirrus] = SCL_CIRRUS
        opacity[cirrus] = 0.08
    return Sky(opacity=opacity, shadow=shadow, scl_cloud=scl)
