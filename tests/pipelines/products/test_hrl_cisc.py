"""Known answers of the HRL imperviousness and CISC class layers."""

from __future__ import annotations

import numpy as np
import pytest

from landstack.pipelines.products import cisc, codes, hrl
from landstack.pipelines.products.errors import SpecMismatchError


def test_sealing_mask_on_a_3x3_case() -> None:
    raw = np.array([[95, 91, 90], [10, 0, 50], [99, np.nan, 80]], np.float32)
    ras = np.array([[6, 6, 6], [1, 6, 1], [254, 1, 6]], np.uint8)
    mask = hrl.sealing_mask(raw, ras)
    # > 90 or Sealed; 90 itself is not above the threshold; NaN is no data; RAS outside is outside
    np.testing.assert_array_equal(mask, [[1, 1, 0], [1, 0, 1], [255, 255, 0]])
    imd = hrl.final_imd(raw, mask)
    # recalculated on the mask (a sealed pixel is at least 1 %), 0 elsewhere, nodata where the mask is
    np.testing.assert_array_equal(imd, [[95, 91, 0], [10, 0, 50], [255, 255, 0]])
    codes.check_codes(codes.layer(codes.HRL_SEALING), mask)
    codes.check_codes(codes.layer(codes.HRL_IMD), imd)


def test_sealed_pixel_with_zero_raw_density_gets_one_percent() -> None:
    mask = hrl.sealing_mask(np.array([[0.0]]), np.array([[1]], np.uint8))
    assert hrl.final_imd(np.array([[0.0]]), mask)[0, 0] == 1


def test_calibration_keeps_last_years_value_within_tolerance() -> None:
    raw = np.array([[93, 99, 20]], np.float32)
    mask = hrl.sealing_mask(raw, np.array([[6, 6, 1]], np.uint8))
    prev = np.array([[95, 80, 0]], np.uint8)
    np.testing.assert_array_equal(hrl.final_imd(raw, mask, prev, tolerance=3), [[95, 99, 20]])


def test_change_codes_come_from_the_spec() -> None:
    a = np.array([0, 0, 40, 50, 50, 50, 255, 255, 30], np.uint8)[None]
    b = np.array([0, 60, 0, 50, 70, 20, 10, 255, 255], np.uint8)[None]
    change = hrl.imd_change(a, b)
    spec = codes.layer(codes.HRL_CHANGE)
    names = [spec.code_of(int(v)).name for v in change[0]]  # type: ignore[union-attr]
    assert names == [
        "Unchanged non-impervious",
        "New impervious cover",
        "Loss of impervious cover",
        "Unchanged impervious",
        "Increased imperviousness",
        "Decreased imperviousness",
        "Unclassifiable",
        "Outside area",
        "Unclassifiable",
    ]
    codes.check_codes(spec, change)


def test_hrl_layers_only_spec_codes() -> None:
    rng = np.random.default_rng(2)
    raw = rng.uniform(-5, 110, (50, 50)).astype(np.float32)
    raw[0, :10] = np.nan
    ras = rng.choice(np.array([1, 2, 6, 9, 254, 255], np.uint8), (50, 50))
    prev = hrl.hrl_layers(rng.uniform(0, 100, (50, 50)).astype(np.float32), ras).imd
    out = hrl.hrl_layers(raw, ras, previous_imd=prev, calibration_tolerance=2, change_tolerance=5)
    assert out.change is not None
    codes.check_codes(codes.layer(codes.HRL_IMD), out.imd)
    codes.check_codes(codes.layer(codes.HRL_SEALING), out.sealing_mask)
    codes.check_codes(codes.layer(codes.HRL_CHANGE), out.change)


def test_cisc_majority_with_deterministic_ties() -> None:
    imp, veg, water, bare, nod = 1, 2, 3, 0, 255
    block_a = [[veg, veg, imp], [veg, imp, water], [bare, veg, imp]]  # veg 4 -> vegetation
    block_b = [
        [veg, veg, imp],
        [imp, water, water],
        [bare, nod, nod],
    ]  # veg 2 = imp 2 = water 2 -> impervious
    block_c = [[nod, nod, nod], [nod, nod, nod], [nod, water, nod]]  # one valid pixel
    classes = np.block([[np.array(block_a), np.array(block_b), np.array(block_c)]]).astype(np.uint8)
    out = cisc.cisc_layers(classes, min_valid=5)
    np.testing.assert_array_equal(out.classes, [[veg, imp, nod]])
    np.testing.assert_array_equal(out.valid_mask, [[1, 1, 0]])
    # another priority breaks the same tie differently, always the same way
    best, _ = cisc.majority(classes, priority=(water, imp, veg, bare))
    assert best[0, 1] == water
    codes.check_codes(codes.layer(codes.CISC_CLASSES), out.classes)
    codes.check_codes(codes.layer(codes.CISC_VALID), out.valid_mask)


def test_cisc_outside_area_and_bad_codes() -> None:
    classes = np.random.default_rng(0).integers(0, 4, (9, 9)).astype(np.uint8)
    inside = np.array([[True, True, False]] * 3)
    out = cisc.cisc_layers(classes, inside=inside)
    assert (out.classes[:, 2] == 255).all() and (out.valid_mask[:, 2] == 255).all()
    with pytest.raises(SpecMismatchError, match="7"):
        cisc.cisc_layers(np.full((3, 3), 7, np.uint8))
