"""Synthetic prediction items with known values, written through the predict step's own item builder.

The product-step tests need predictions whose values they know exactly (to check blending,
mosaicking and CISC tiles against known answers) without training or running a model. The rasters
are written like the predictor writes them (uint8 probabilities 0-250 / nodata 255, float32
regressions with NaN, uint16 data score / 65535, a uint16 unit index) and turned into COGs and a
`landstack-predictions` item by :func:`landstack.pipelines.inference.publishing.prediction_item`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine

from landstack.catalog.grid import Tile, TileGrid
from landstack.pipelines.inference.predict import Prediction
from landstack.pipelines.inference.publishing import prediction_item
from landstack.storage import ObjectStore

RAS_CLASSES = tuple(str(c) for c in range(1, 12))
CISC_CLASSES = ("0", "1", "2", "3")
_NODATA = {"uint8": 255, "uint16": 65535, "float32": float("nan")}


def grid(left: float, top: float, width: int, height: int, res: float = 10.0) -> TileGrid:
    """An EPSG:3035 grid with its north-west corner at (left, top)."""
    return TileGrid("EPSG:3035", Affine(res, 0.0, left, 0.0, -res, top), (height, width))


def encode(p: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Probabilities (C, H, W) in 0..1 as the predictor encodes them (uint8 0-250, 255 = no data)."""
    out = np.clip(np.rint(p * 250), 0, 250).astype(np.uint8)
    out[:, ~valid] = 255
    return out


def constant_probabilities(values: dict[int, float], shape: tuple[int, int], n: int = 11) -> np.ndarray:
    """(n, H, W) probabilities: class code c (1-based for RAS) -> its probability everywhere."""
    p = np.zeros((n, *shape), np.float32)
    for code, v in values.items():
        p[code - 1] = v
    return p


def _write(path: Path, g: TileGrid, values: np.ndarray, bands: list[str], nodata: float | None) -> None:
    profile = {
        "driver": "GTiff",
        "width": g.width,
        "height": g.height,
        "count": values.shape[0],
        "dtype": str(values.dtype),
        "crs": g.crs,
        "transform": g.transform,
        "nodata": nodata,
        # GDAL would take 3-4 uint8 bands for RGB(A): the COG conversion then reads band 4 (CISC
        # water probability) as alpha and blanks every pixel where it is 0
        "photometric": "MINISBLACK",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)
        for i, b in enumerate(bands, start=1):
            dst.set_band_description(i, b)


def write_prediction(
    store: ObjectStore,
    tile: str,
    g: TileGrid,
    year: int,
    assets: dict[str, tuple[np.ndarray, list[str]]],
    properties: dict[str, Any] | None = None,
) -> str:
    """A prediction item of roll-out tile `tile` on grid `g` with these assets (key -> (values, band
    names)); `data-score` defaults to 20 valid observations everywhere. Returns the item URL."""
    assets = {"data-score": (np.full((1, *g.shape), 20, np.uint16), ["data_score"]), **assets}
    pred = Prediction()
    with tempfile.TemporaryDirectory(prefix="synthetic-prediction-") as tmp:
        work = Path(tmp)
        for key, (values, bands) in assets.items():
            path = work / f"{key}.tif"
            nodata = 0 if key == "units" else _NODATA[str(values.dtype)]
            _write(path, g, values, bands, nodata)
            pred.files[key] = path
            pred.bands[key] = bands
            if key not in ("data-score", "medians", "units"):
                pred.models[key] = f"synthetic-{key}:1"
        url, _ = prediction_item(store, Tile(tile, g), year, pred, work, properties)
    return url


def all_families(g: TileGrid, seed: int = 0) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Assets of every family with plausible random values (no production units)."""
    rng = np.random.default_rng(seed)
    shape = g.shape
    valid = np.ones(shape, bool)
    ras = rng.dirichlet(np.full(11, 0.3), size=shape).transpose(2, 0, 1).astype(np.float32)
    cisc = rng.dirichlet(np.full(4, 0.5), size=shape).transpose(2, 0, 1).astype(np.float32)
    imd = rng.uniform(0, 100, (1, *shape)).astype(np.float32)
    built = rng.uniform(0, 100, (2, *shape)).astype(np.float32)
    medians = np.stack([rng.uniform(-0.2, 0.9, shape), rng.uniform(-0.6, 0.4, shape)]).astype(np.float32)
    return {
        "medians": (medians, ["NDVI_median", "NDWI_median"]),
        "clcplus-backbone": (encode(ras, valid), list(RAS_CLASSES)),
        "hrl-imperviousness": (imd, ["imd"]),
        "emc-built": (built, ["S", "NRES"]),
        "cisc": (encode(cisc, valid), list(CISC_CLASSES)),
    }
