"""A tile's grid (CRS, transform, shape) and its block windows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform and (rows, cols)."""

    crs: CRS
    transform: Affine
    shape: tuple[int, int]

    @classmethod
    def from_origin(cls, crs: CRS | str, left: float, top: float, res: float, rows: int, cols: int) -> Grid:
        """A north-up grid with square pixels of `res` whose upper-left corner is (left, top)."""
        return cls(CRS.from_user_input(crs), Affine(res, 0, left, 0, -res, top), (rows, cols))

    @property
    def pixel_area(self) -> float:
        """Area of one pixel in CRS units squared."""
        return abs(self.transform.a * self.transform.e)


def windows(shape: tuple[int, int], block: int) -> Iterator[Window]:
    """Row-major block windows of at most `block` x `block` covering `shape`."""
    rows, cols = shape
    for r in range(0, rows, block):
        for c in range(0, cols, block):
            yield Window(c, r, min(block, cols - c), min(block, rows - r))
