"""A prediction raster keeps every band's values through the COG conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from landstack.catalog.grid import TileGrid
from landstack.pipelines.inference.predict import PROB_NODATA, _profile
from landstack.pipelines.inference.publishing import _to_cog


def test_four_class_probabilities_are_not_read_as_rgba(tmp_path: Path) -> None:
    # CISC has 4 classes: a 4-band uint8 file that GDAL took for RGBA lost every pixel whose
    # 4th band (water) was 0 to the alpha mask
    grid = TileGrid("EPSG:3035", from_origin(4_000_000, 3_000_000, 10, 10), (64, 64))
    probs = np.zeros((4, 64, 64), np.uint8)
    probs[0], probs[1], probs[2] = 100, 150, 0  # water (band 4) is 0 everywhere
    probs[3, :8] = 250
    src, dst = tmp_path / "p.tif", tmp_path / "p.cog.tif"
    with rasterio.open(src, "w", **_profile(grid, 4, "uint8", PROB_NODATA)) as ds:
        ds.write(probs)
    _to_cog(src, dst)
    with rasterio.open(dst) as ds:
        assert ds.count == 4 and ds.colorinterp[3] != rasterio.enums.ColorInterp.alpha
        np.testing.assert_array_equal(ds.read(), probs)
