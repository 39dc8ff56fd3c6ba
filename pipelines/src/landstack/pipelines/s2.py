"""Sentinel-2 L2A: the band table, provider asset names and the L2A reflectance scaling.

Everything provider-specific lives here: earth-search names assets by common name (`blue`, `nir08`,
`scl`), Planetary Computer and CDSE by band id (`B02`, `B8A`, `SCL`). Code elsewhere always speaks
band ids and asks this module for the asset key.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landstack.pipelines.errors import ConfigError


@dataclass(frozen=True)
class Band:
    """One Sentinel-2 MSI band (or the scene classification layer)."""

    id: str
    resolution: int
    common_name: str | None
    center_wavelength: float | None  # µm
    full_width_half_max: float | None  # µm
    description: str


BANDS: dict[str, Band] = {
    b.id: b
    for b in (
        Band("B01", 60, "coastal", 0.443, 0.027, "Coastal aerosol"),
        Band("B02", 10, "blue", 0.490, 0.098, "Blue"),
        Band("B03", 10, "green", 0.560, 0.045, "Green"),
        Band("B04", 10, "red", 0.665, 0.038, "Red"),
        Band("B05", 20, "rededge", 0.705, 0.019, "Vegetation red edge 1"),
        Band("B06", 20, "rededge", 0.740, 0.018, "Vegetation red edge 2"),
        Band("B07", 20, "rededge", 0.783, 0.028, "Vegetation red edge 3"),
        Band("B08", 10, "nir", 0.842, 0.145, "NIR 1"),
        Band("B8A", 20, "nir08", 0.865, 0.033, "NIR 2"),
        Band("B09", 60, "nir09", 0.945, 0.026, "Water vapour"),
        Band("B11", 20, "swir16", 1.610, 0.143, "SWIR 1.6 µm"),
        Band("B12", 20, "swir22", 2.190, 0.242, "SWIR 2.2 µm"),
        Band("SCL", 20, None, None, None, "Scene classification map"),
    )
}
REFLECTANCE_BANDS: tuple[str, ...] = tuple(b for b in BANDS if b != "SCL")

# Asset keys per provider, in one place.
PROVIDERS: dict[str, dict[str, str]] = {
    "earth-search": {
        "B01": "coastal",
        "B02": "blue",
        "B03": "green",
        "B04": "red",
        "B05": "rededge1",
        "B06": "rededge2",
        "B07": "rededge3",
        "B08": "nir",
        "B8A": "nir08",
        "B09": "nir09",
        "B11": "swir16",
        "B12": "swir22",
        "SCL": "scl",
    },
    "planetary-computer": {b: b for b in BANDS},
    "cdse": {b: b for b in BANDS},
}
PROVIDERS["band-id"] = PROVIDERS["planetary-computer"]

# SCL codes (ESA L2A product specification).
SCL_CLASSES: dict[int, str] = {
    0: "no data",
    1: "saturated or defective",
    2: "dark area pixels",
    3: "cloud shadows",
    4: "vegetation",
    5: "not vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud medium probability",
    9: "cloud high probability",
    10: "thin cirrus",
    11: "snow",
}
SCL_NODATA: tuple[int, ...] = (0, 1)
SCL_MASK_DEFAULT: tuple[int, ...] = (2, 3, 8, 9)

QUANTIFICATION_VALUE = 10000
BOA_ADD_OFFSET = -1000
_OFFSET_FROM_BASELINE = (4, 0)


def asset_key(band: str, provider: str) -> str:
    """The asset key of band id `band` in items of `provider`."""
    try:
        names = PROVIDERS[provider]
    except KeyError as e:
        raise ConfigError(f"unknown provider {provider!r}; use one of {sorted(PROVIDERS)}") from e
    try:
        return names[band]
    except KeyError as e:
        raise ConfigError(f"unknown Sentinel-2 band {band!r}; use one of {list(BANDS)}") from e


def detect_provider(asset_keys: set[str] | list[str]) -> str:
    """Guess the provider naming style from an item's asset keys."""
    keys = set(asset_keys)
    if {"blue", "red", "nir"} <= keys or "scl" in keys:
        return "earth-search"
    return "band-id"


def boa_offset(processing_baseline: str | None, offset_applied: bool = False) -> int:
    """Digital-number offset of an L2A product: -1000 from processing baseline 04.00, else 0.

    `offset_applied` is true for archives that already harmonised old and new baselines.
    """
    if offset_applied or not processing_baseline:
        return 0
    try:
        major, minor = (int(p) for p in processing_baseline.split(".")[:2])
    except ValueError as e:
        raise ConfigError(f"processing baseline {processing_baseline!r} is not like '04.00'") from e
    return BOA_ADD_OFFSET if (major, minor) >= _OFFSET_FROM_BASELINE else 0


def processing_baseline_for(year: int, month: int, day: int) -> str:
    """A plausible processing baseline for an acquisition date (04.00 from 2022-01-25)."""
    if (year, month, day) >= (2023, 12, 6):
        return "05.10"
    if (year, month, day) >= (2022, 12, 6):
        return "05.09"
    if (year, month, day) >= (2022, 1, 25):
        return "04.00"
    return "02.14" if year <= 2020 else "03.01"


def to_reflectance(dn: np.ndarray, offset: int | np.ndarray) -> np.ndarray:
    """Surface reflectance (float32) from L2A digital numbers; 0 (no data) becomes NaN."""
    out = (dn.astype(np.float32) + np.asarray(offset, dtype=np.float32)) / QUANTIFICATION_VALUE
    return np.where(dn == 0, np.float32(np.nan), out)


def to_dn(reflectance: np.ndarray, offset: int) -> np.ndarray:
    """L2A digital numbers (uint16, 1..65535) from reflectance; the inverse of `to_reflectance`."""
    dn = np.rint(reflectance * QUANTIFICATION_VALUE - offset)
    return np.clip(dn, 1, 65535).astype(np.uint16)
