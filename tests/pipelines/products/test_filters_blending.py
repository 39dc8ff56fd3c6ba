"""Known answers of the bilateral filter and production-unit blending."""

from __future__ import annotations

import numpy as np
import pytest

from landstack.pipelines.products.blending import blend, blend_encoded, ramp, unit_weights
from landstack.pipelines.products.filters import bilateral_filter


def _two_class(p_first: np.ndarray) -> np.ndarray:
    return np.stack([p_first, 1.0 - p_first]).astype(np.float32)


def test_isolated_uncertain_pixel_is_removed() -> None:
    first = np.full((9, 9), 0.2, np.float32)
    first[4, 4] = 0.55  # salt-and-pepper: a marginal vote for class 0 among confident class 1
    out = bilateral_filter(_two_class(first))
    assert np.argmax(_two_class(first), axis=0)[4, 4] == 0
    assert np.argmax(out, axis=0)[4, 4] == 1
    assert (np.argmax(out, axis=0) == 1).all()


def test_straight_edge_is_kept() -> None:
    first = np.where(np.arange(12)[None, :] < 6, 0.9, 0.1).repeat(12, axis=0).astype(np.float32)
    prob = _two_class(first)
    out = bilateral_filter(prob)
    np.testing.assert_array_equal(np.argmax(out, axis=0), np.argmax(prob, axis=0))
    # confident regions barely move even right at the edge
    assert np.abs(out - prob).max() < 1e-3


def test_filter_respects_nodata_and_preserves_sums() -> None:
    rng = np.random.default_rng(1)
    raw = rng.random((11, 20, 20)).astype(np.float32)
    prob = raw / raw.sum(axis=0)
    valid = np.ones((20, 20), bool)
    valid[5:8, 5:8] = False
    prob[:, ~valid] = 7.0  # garbage where there is no data must not leak into neighbours
    out = bilateral_filter(prob, valid, win_size=4, sigma_spatial=0.8, sigma_color=0.25)
    np.testing.assert_array_equal(out[:, ~valid], prob[:, ~valid])
    np.testing.assert_allclose(out[:, valid].sum(axis=0), 1.0, atol=1e-5)
    assert out[:, valid].max() <= 1.0 + 1e-6


def test_filter_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="sigma"):
        bilateral_filter(np.zeros((2, 3, 3), np.float32), sigma_color=0)


def test_blending_weights_sum_to_one_and_are_half_at_the_overlap_centre() -> None:
    # two units split at column 50; 10 px buffer -> the overlap spans columns 40..59
    core_a = np.zeros((20, 100), bool)
    core_a[:, :50] = True
    core_b = ~core_a
    w = unit_weights([core_a, core_b], buffer=10, pixel_size=1)
    np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-6)
    assert ramp(0.0, 10) == 0.5
    # the overlap centre is the border between columns 49 and 50: the weights mirror around 0.5
    np.testing.assert_allclose(w[0, :, 49], w[1, :, 50])
    np.testing.assert_allclose((w[0, :, 49] + w[0, :, 50]) / 2, 0.5)
    # linear with distance: equal steps across the overlap, 1/0 outside it
    row = w[0, 0]
    np.testing.assert_allclose(np.diff(row[40:60]), -1 / 20, atol=1e-6)
    assert row[:40].min() == 1.0 and row[60:].max() == 0.0


def test_blending_three_units_and_availability() -> None:
    yy, xx = np.mgrid[0:60, 0:60]
    cores = [(xx < 30) & (yy < 30), (xx >= 30) & (yy < 30), yy >= 30]
    available = [np.ones((60, 60), bool) for _ in cores]
    available[2][50:, :] = False  # unit 2 has no data at the bottom: nobody else covers it
    available[0][:, :] = True
    w = unit_weights(cores, buffer=8, pixel_size=1, available=available)
    total = w.sum(axis=0)
    np.testing.assert_allclose(total[:50], 1.0, atol=1e-6)
    # where unit 2 is missing and the others are beyond their buffers, no unit contributes
    assert (total[59] == 0).all()
    probs = [np.full((3, 60, 60), k, np.float32) for k in range(3)]
    out = blend(probs, w)
    assert out[0, 0, 0] == pytest.approx(0.0)
    assert out[0, 40, 45] == pytest.approx(2.0)
    assert 0.0 < out[0, 29, 29] < 2.0


def test_units_are_filtered_then_blended_into_encoded_probabilities() -> None:
    from landstack.pipelines.products.clcplus import clcplus_layers, decode_probabilities

    h, w = 20, 40
    core_a = np.zeros((h, w), bool)
    core_a[:, :20] = True
    a = np.zeros((11, h, w), np.uint8)
    a[0] = 250  # unit A says Sealed everywhere
    b = np.zeros((11, h, w), np.uint8)
    b[5] = 250  # unit B says Permanent herbaceous
    b[:, :, :5] = 255  # and has no data in the west
    weights = unit_weights([core_a, ~core_a], buffer=8, pixel_size=1)
    out = blend_encoded([a, b], weights)
    prob, valid = decode_probabilities(out)
    assert valid.all()
    np.testing.assert_allclose(prob.sum(axis=0), 1.0, atol=0.02)
    assert prob[0, 0, 0] == 1.0 and prob[5, 0, -1] == 1.0
    np.testing.assert_allclose(prob[0, :, 19] + prob[0, :, 20], 1.0, atol=0.01)  # mirrored at the centre
    ras = clcplus_layers(out, np.zeros((h, w)), filter_inputs=False).ras
    assert (ras[:, :20] == 1).all() and (ras[:, 20:] == 6).all()
