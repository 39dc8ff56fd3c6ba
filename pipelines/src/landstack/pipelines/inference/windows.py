"""Windows over a tile: the core each window writes, and the read extent around it (the halo).

Pixel models read exactly their core. Patch models (U-Net, impervious CNN) read the core plus a
halo at least as wide as their receptive field and keep only the core, so neighbouring windows
agree at their seams; read extents start on multiples of the model's pooling factor, so a window
sees the same pooling grid as the whole tile would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A row or column range [start, stop)."""

    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class TileWindow:
    """One window: the core (what is written) and the read extent (core + halo, clipped to the tile)."""

    rows: Span
    cols: Span
    read_rows: Span
    read_cols: Span

    @property
    def core_in_read(self) -> tuple[slice, slice]:
        """Slices of the core inside an array of the read extent."""
        r0 = self.rows.start - self.read_rows.start
        c0 = self.cols.start - self.read_cols.start
        return slice(r0, r0 + self.rows.size), slice(c0, c0 + self.cols.size)


def _floor(v: int, m: int) -> int:
    return (v // m) * m


def windows(shape: tuple[int, int], size: int, halo: int = 0, multiple: int = 1) -> Iterator[TileWindow]:
    """Windows of `size` × `size` core pixels covering `shape`, with `halo` pixels of context.

    `size` and the halo are rounded up to `multiple` so every read extent starts on the model's
    pooling grid.
    """
    if size <= 0:
        raise ValueError(f"window size {size} must be positive")
    size = -(-size // multiple) * multiple
    halo = -(-halo // multiple) * multiple if halo else 0
    h, w = shape
    for r in range(0, h, size):
        for c in range(0, w, size):
            rows, cols = Span(r, min(r + size, h)), Span(c, min(c + size, w))
            read_rows = Span(max(0, _floor(r - halo, multiple)), min(h, rows.stop + halo))
            read_cols = Span(max(0, _floor(c - halo, multiple)), min(w, cols.stop + halo))
            yield TileWindow(rows, cols, read_rows, read_cols)


def padded_shape(height: int, width: int, multiple: int) -> tuple[int, int]:
    """The smallest shape of multiples of `multiple` that holds height × width."""
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple
