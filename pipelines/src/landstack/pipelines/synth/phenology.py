"""Spectral-temporal behaviour of the 11 land-cover classes.

Every spectral unit (a parcel, or the gardens and street trees of an urban block) is a linear
mixture of endmember spectra whose fractions follow the class's seasonal cycle: crop sowing and
harvest, leaf-on/leaf-off of deciduous trees, evergreen canopies, grassland mowing, lichens under
winter snow, glacier melt in summer. Parameters vary per unit (dates, amplitude, brightness).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Surface reflectance of the endmembers in band order B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B11 B12.
ENDMEMBERS: dict[str, list[float]] = {
    "green": [0.03, 0.04, 0.08, 0.04, 0.10, 0.28, 0.36, 0.40, 0.42, 0.40, 0.22, 0.11],
    "needle": [0.02, 0.025, 0.05, 0.025, 0.07, 0.17, 0.21, 0.23, 0.24, 0.23, 0.12, 0.05],
    "evergreen": [0.025, 0.03, 0.065, 0.03, 0.09, 0.25, 0.32, 0.35, 0.36, 0.35, 0.17, 0.07],
    "grass": [0.035, 0.045, 0.09, 0.05, 0.12, 0.30, 0.38, 0.42, 0.43, 0.41, 0.26, 0.14],
    "dry": [0.06, 0.07, 0.10, 0.13, 0.17, 0.20, 0.22, 0.24, 0.25, 0.25, 0.33, 0.25],
    "soil": [0.07, 0.09, 0.13, 0.17, 0.20, 0.22, 0.24, 0.26, 0.27, 0.27, 0.34, 0.28],
    "rock": [0.12, 0.15, 0.20, 0.24, 0.26, 0.27, 0.28, 0.29, 0.30, 0.30, 0.36, 0.31],
    "lichen": [0.05, 0.06, 0.09, 0.10, 0.13, 0.18, 0.21, 0.23, 0.24, 0.24, 0.25, 0.17],
    "water": [0.06, 0.05, 0.04, 0.025, 0.02, 0.012, 0.010, 0.008, 0.007, 0.005, 0.003, 0.002],
    "snow": [0.90, 0.92, 0.91, 0.88, 0.86, 0.84, 0.82, 0.80, 0.78, 0.70, 0.10, 0.06],
}
SEALED: dict[str, list[float]] = {
    "residential": [0.09, 0.10, 0.12, 0.16, 0.18, 0.19, 0.20, 0.21, 0.21, 0.21, 0.27, 0.24],
    "non_residential": [0.18, 0.20, 0.22, 0.23, 0.24, 0.25, 0.25, 0.26, 0.26, 0.26, 0.30, 0.27],
    "road": [0.07, 0.08, 0.09, 0.10, 0.11, 0.11, 0.12, 0.12, 0.12, 0.12, 0.14, 0.13],
}
CLOUD = np.array([0.45, 0.46, 0.47, 0.48, 0.48, 0.48, 0.48, 0.48, 0.48, 0.40, 0.35, 0.25], np.float32)
_NAMES = list(ENDMEMBERS)
_E = np.array([ENDMEMBERS[k] for k in _NAMES], np.float32)  # (n_endmembers, 12)
_I = {k: i for i, k in enumerate(_NAMES)}


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _season(doy: np.ndarray, up: float, down: float, k: float) -> np.ndarray:
    """Smooth 0..1 window: rises around day `up`, falls around day `down`."""
    return _logistic((doy - up) / k) * _logistic((down - doy) / k)


@dataclass
class UnitParams:
    """Per spectral unit: class, date shift (days), amplitude, brightness, crop type, mowing dates."""

    cls: np.ndarray
    shift: np.ndarray
    amp: np.ndarray
    bright: np.ndarray
    crop: np.ndarray
    mow: np.ndarray  # (n, 3) day of year, NaN = no cut

    @classmethod
    def draw(cls, classes: np.ndarray, rng: np.random.Generator) -> UnitParams:
        n = classes.size
        mow = np.sort(rng.uniform(140, 280, size=(n, 3)), axis=1)
        mow[rng.random((n, 3)) < np.array([0.15, 0.4, 0.7])] = np.nan
        return cls(
            cls=classes.astype(np.uint8),
            shift=rng.normal(0, 7, n).astype(np.float32),
            amp=rng.uniform(0.85, 1.1, n).astype(np.float32),
            bright=rng.uniform(0.93, 1.07, n).astype(np.float32),
            crop=rng.integers(0, 3, n).astype(np.uint8),
            mow=mow.astype(np.float32),
        )


def unit_fractions(p: UnitParams, doy: float) -> np.ndarray:
    """Endmember fractions (n_units, n_endmembers) of every unit on one day of year."""
    n = p.cls.size
    f = np.zeros((n, len(_NAMES)), np.float32)
    d = (doy - p.shift).astype(np.float32)
    c, amp = p.cls, p.amp

    def put(mask: np.ndarray, name: str, value: np.ndarray | float) -> None:
        f[mask, _I[name]] = np.broadcast_to(value, d.shape)[mask]

    m = c == 1  # sealed fraction is mixed in per pixel; the unit itself is urban grass
    put(m, "grass", 0.75)
    put(m, "dry", 0.25)
    m = c == 2
    g = 0.78 + 0.08 * amp * _season(d, 120, 280, 15)
    put(m, "needle", g)
    put(m, "dry", 1 - g)
    m = c == 3
    leaf = 0.08 + 0.85 * np.minimum(amp, 1.0) * _season(d, 115, 290, 8)
    put(m, "green", leaf)
    put(m, "dry", (1 - leaf) * 0.7)
    put(m, "soil", (1 - leaf) * 0.3)
    m = c == 4
    g = 0.86 + 0.05 * _season(d, 100, 300, 20)
    put(m, "evergreen", g)
    put(m, "dry", 1 - g)
    m = c == 5
    g = 0.30 + 0.22 * amp * _season(d, 110, 280, 15)
    put(m, "green", g)
    put(m, "dry", 0.45)
    put(m, "soil", 0.55 - g)
    m = c == 6
    g = 0.42 + 0.48 * np.minimum(amp, 1.0) * _season(d, 75, 305, 12)
    for k in range(p.mow.shape[1]):
        since = d - p.mow[:, k]
        cut = np.where(np.isfinite(since) & (since >= 0), 1 - 0.6 * np.exp(-np.nan_to_num(since) / 20), 1.0)
        g = g * cut
    put(m, "grass", g)
    put(m, "dry", (1 - g) * 0.8)
    put(m, "soil", (1 - g) * 0.2)
    m = c == 7
    winter = 0.88 * _season(d, 70, 180, 9) + 0.22 * (_logistic((d - 300) / 8) + _logistic((55 - d) / 8))
    spring = 0.9 * _season(d, 120, 215, 9)
    summer = 0.9 * _season(d, 165, 262, 8)
    g = np.select([p.crop == 0, p.crop == 1], [winter, spring], summer)
    residue = np.select(
        [p.crop == 0, p.crop == 1],
        [0.4 * _season(d, 185, 290, 6), 0.3 * _season(d, 215, 280, 6)],
        0.35 * _season(d, 262, 330, 6),
    )
    put(m, "green", g)
    put(m, "dry", residue)
    put(m, "soil", np.maximum(0.0, 1 - g - residue))
    m = c == 8
    snow = 0.9 * (_logistic((d - 315) / 8) + _logistic((105 - d) / 8))
    rest = 1 - snow
    put(m, "snow", snow)
    put(m, "lichen", rest * (0.62 + 0.1 * _season(d, 150, 250, 10)))
    put(m, "rock", rest * (0.38 - 0.1 * _season(d, 150, 250, 10)))
    m = c == 9
    g = 0.08 * _season(d, 120, 260, 15)
    put(m, "rock", 0.82)
    put(m, "green", g)
    put(m, "soil", 0.18 - g)
    m = c == 10
    algae = 0.03 * _season(d, 150, 250, 15)
    put(m, "water", 0.96 - algae)
    put(m, "soil", 0.04)
    put(m, "green", algae)
    m = c == 11
    s = 0.9 - 0.3 * amp * _season(d, 175, 250, 10)
    put(m, "snow", s)
    put(m, "rock", 1 - s)
    return f


def unit_spectra(p: UnitParams, doy: float) -> np.ndarray:
    """Reflectance (n_units, 12) of every unit on one day of year."""
    return (unit_fractions(p, doy) @ _E) * p.bright[:, None]


def snow_spectrum() -> np.ndarray:
    return _E[_I["snow"]].copy()
