"""CLCplus layers block by block: identical to the whole-array result, memory bounded by the block."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from landstack.pipelines.products import clcplus, clcplus_blocks


def _encoded(seed: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parcels = rng.integers(0, 11, (h // 20 + 1, w // 20 + 1))
    cls = np.repeat(np.repeat(parcels, 20, 0), 20, 1)[:h, :w]
    logits = rng.normal(0, 1, (11, h, w)).astype(np.float32)
    np.put_along_axis(logits, cls[None], 2.5 + rng.normal(0, 1.5, (1, h, w)).astype(np.float32), 0)
    prob = np.exp(logits) / np.exp(logits).sum(axis=0)
    enc = clcplus.encode_probabilities(prob, np.ones((h, w), bool))
    enc[:, :3, :7] = 255
    return enc


def test_blockwise_equals_whole_array_with_the_same_thresholds() -> None:
    h, w = 130, 170
    enc, prev = _encoded(1, h, w), _encoded(2, h, w)
    score = np.random.default_rng(3).integers(0, 150, (h, w))
    sea = np.zeros((h, w), bool)
    sea[-10:] = True
    inside = np.ones((h, w), bool)
    inside[:, -5:] = False
    thresholds = clcplus_blocks.change_thresholds(enc, prev, block=48)
    whole = clcplus.clcplus_layers(
        enc, score, prev_encoded=prev, production_area=inside, sea=sea, thresholds=thresholds
    )
    ras = np.zeros((h, w), np.uint8)
    rascl = np.zeros((h, w), np.uint8)
    for win, layers in clcplus_blocks.clcplus_blocks(
        enc, score, prev_encoded=prev, production_area=inside, sea=sea, block=48
    ):
        sl = (slice(win.row_off, win.row_off + win.height), slice(win.col_off, win.col_off + win.width))
        ras[sl], rascl[sl] = layers.ras, layers.rascl
    np.testing.assert_array_equal(ras, whole.ras)
    np.testing.assert_array_equal(rascl, whole.rascl)


def test_histogram_thresholds_match_exact_percentiles() -> None:
    h, w = 120, 120
    enc, prev = _encoded(4, h, w), _encoded(5, h, w)
    exact = clcplus.clcplus_layers(enc, np.zeros((h, w)), prev_encoded=prev).thresholds
    approx = clcplus_blocks.change_thresholds(enc, prev, block=50)
    assert set(exact) == set(approx)
    for key, value in exact.items():
        assert approx[key] == pytest.approx(value, abs=2 * np.sqrt(2) / clcplus_blocks.BINS)


def test_blockwise_memory_is_bounded_by_the_block(tmp_path: Path) -> None:
    h = w = 1024
    enc = np.lib.format.open_memmap(tmp_path / "enc.npy", "w+", np.uint8, (11, h, w))
    for r in range(0, h, 256):  # fill without ever holding the whole tile
        enc[:, r : r + 256] = _encoded(r, 256, w)
    score = np.lib.format.open_memmap(tmp_path / "score.npy", "w+", np.uint16, (h, w))
    score[:] = 30
    enc.flush()
    tracemalloc.start()
    try:
        n = 0
        for _, layers in clcplus_blocks.clcplus_blocks(enc, score, block=128):
            n += int(layers.ras.size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole_float = 11 * h * w * 4
    assert n == h * w
    assert peak < whole_float / 8, (
        f"peak {peak / 2**20:.1f} MiB vs {whole_float / 2**20:.0f} MiB whole-tile floats"
    )
