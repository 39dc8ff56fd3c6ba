"""Known answers of the CLCplus post-processing: calibration, confidence, codes, recoding, masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from landstack.pipelines.products import clcplus, codes
from landstack.pipelines.products.errors import SpecMismatchError, VectorInputError
from landstack.pipelines.products.vectors import load_corrections, load_mask, rasterize_classes, read_features

N = 11


def _onehot_like(cls_index: np.ndarray, p_top: np.ndarray, second: np.ndarray | None = None) -> np.ndarray:
    """Probabilities (11, H, W): `p_top` on class index `cls_index`, the rest spread evenly."""
    h, w = cls_index.shape
    prob = np.repeat(((1 - p_top) / (N - 1))[None], N, axis=0).astype(np.float32)
    rows, cols = np.indices((h, w))
    prob[cls_index, rows, cols] = p_top
    return prob


def _index(code: int) -> int:
    return int(np.flatnonzero(clcplus.class_codes() == code)[0])


def test_probability_channels_follow_the_spec() -> None:
    ras = codes.layer(codes.CLCPLUS_RAS)
    assert clcplus.class_codes().tolist() == codes.thematic_codes(ras)
    assert len(clcplus.class_codes()) == N


def test_decode_encode_round_trip() -> None:
    enc = np.full((N, 2, 2), 0, np.uint8)
    enc[0] = 250
    enc[:, 1, 1] = 255
    prob, valid = clcplus.decode_probabilities(enc)
    assert prob[0, 0, 0] == 1.0 and not valid[1, 1] and valid[0, 0]
    np.testing.assert_array_equal(clcplus.encode_probabilities(prob, valid), enc)


def test_confidence_of_07_02_01_is_50() -> None:
    prob = np.zeros((N, 1, 1), np.float32)
    prob[:3, 0, 0] = (0.7, 0.2, 0.1)
    assert clcplus.confidence(prob)[0, 0] == 50


def test_calibration_suppresses_weak_leaf_type_change_and_keeps_strong_conversion() -> None:
    """A 2 -> 3 change below its (very high) threshold is suppressed; a 6 -> 1 above its threshold kept."""
    rng = np.random.default_rng(0)
    h, w = 40, 50
    # background: many 6 -> 7 changes with change measures spread over a wide range
    prev_idx = np.full((h, w), _index(6))
    now_idx = np.full((h, w), _index(7))
    prev = _onehot_like(prev_idx, np.full((h, w), 0.6, np.float32))
    now = _onehot_like(now_idx, rng.uniform(0.3, 0.9, (h, w)).astype(np.float32))
    # the 2 -> 3 pixel: moved from a confident class 2 towards class 3 until its change measure is
    # the 95th percentile of the background changes: above the standard threshold (90th), below the
    # leaf-type one (99.5th)
    target = float(np.percentile(clcplus.change_measure(now, prev)[1:, :], 95))
    start = _onehot_like(np.array([[_index(2)]]), np.array([[0.9]], np.float32))[:, 0, 0]
    towards = np.zeros(N, np.float32)
    towards[_index(3)] = 1.0
    step = target / float(np.linalg.norm(towards - start))
    prev[:, 0, 0] = start
    now[:, 0, 0] = start + step * (towards - start)
    # the 6 -> 1 pixel: a moderate change, above the lower threshold of conversions to Sealed
    now[:, 0, 1] = _onehot_like(np.array([[_index(1)]]), np.array([[0.8]], np.float32))[:, 0, 0]
    valid = np.ones((h, w), bool)
    cal = clcplus.calibrate(now, prev, valid)
    t_leaf, t_sealed = cal.thresholds[(2, 3)], cal.thresholds[(6, 1)]
    assert cal.change[0, 0] < t_leaf
    assert cal.change[0, 0] > cal.thresholds[(6, 7)]  # a standard direction would have kept it
    assert cal.classes[0, 0] == 2 and cal.suppressed[0, 0]
    assert cal.change[0, 1] > t_sealed
    assert cal.classes[0, 1] == 1 and not cal.suppressed[0, 1]
    # suppressed pixels carry last year's probabilities, so the class and confidence agree
    np.testing.assert_array_equal(cal.prob[:, 0, 0], prev[:, 0, 0])
    # the standard 90th percentile keeps about 10 % of the 6 -> 7 changes
    kept = (cal.classes == 7).mean()
    assert 0.05 < kept < 0.15


def test_calibration_thresholds_are_configurable() -> None:
    prev = _onehot_like(np.full((2, 2), _index(2)), np.full((2, 2), 0.9, np.float32))
    now = _onehot_like(np.full((2, 2), _index(3)), np.full((2, 2), 0.9, np.float32))
    cfg = clcplus.CalibrationConfig(thresholds={(2, 3): 0.1})
    cal = clcplus.calibrate(now, prev, np.ones((2, 2), bool), config=cfg)
    assert (cal.classes == 3).all() and cal.thresholds[(2, 3)] == 0.1


def _encoded_tile(h: int = 30, w: int = 30) -> np.ndarray:
    rng = np.random.default_rng(3)
    raw = rng.random((N, h, w)) ** 4
    prob = raw / raw.sum(axis=0)
    return clcplus.encode_probabilities(prob.astype(np.float32), np.ones((h, w), bool))


def test_layers_hold_only_spec_codes_and_technical_codes_land_where_they_should() -> None:
    enc = _encoded_tile()
    enc[:, 0, :5] = 255  # no data
    prev = _encoded_tile()[:, ::-1]
    inside = np.ones((30, 30), bool)
    inside[:, 25:] = False
    sea = np.zeros((30, 30), bool)
    sea[20:, :10] = True
    corrections = np.zeros((30, 30), np.uint8)
    corrections[10:14, 10:14] = 1
    score = np.random.default_rng(0).integers(0, 400, (30, 30))
    out = clcplus.clcplus_layers(
        enc, score, prev_encoded=prev, production_area=inside, sea=sea, corrections=corrections
    )
    for cid, arr in (
        (codes.CLCPLUS_RAS, out.ras),
        (codes.CLCPLUS_RASCL, out.rascl),
        (codes.CLCPLUS_RASDL, out.rasdl),
        (codes.CLCPLUS_RASPL, out.raspl),
    ):
        spec = codes.layer(cid)
        assert arr.dtype == np.dtype(spec.dtype)
        codes.check_codes(spec, arr)
    assert (out.ras[:, 25:] == 254).all() and (out.raspl[:, 25:] == 254).all()
    assert (out.rasdl[:, 25:] == 65535).all() and (out.rascl[:, 25:] == 254).all()
    assert (out.ras[0, :5] == 255).all()
    assert (out.ras[20:, :10] == 253).all()
    assert (out.ras[10:14, 10:14] == 1).all()
    # RASPL flags exactly the pixels the recoding changed
    assert out.raspl[10:14, 10:14].sum() == (out.raspl == 1).sum() > 0
    assert out.rasdl[:, :25].max() <= 200


def test_check_codes_rejects_undeclared_values() -> None:
    with pytest.raises(SpecMismatchError, match="12"):
        codes.check_codes(codes.layer(codes.CLCPLUS_RAS), np.array([1, 12], np.uint8))
    with pytest.raises(SpecMismatchError, match="101"):
        codes.check_codes(codes.layer(codes.CLCPLUS_RASCL), np.array([0, 101, 254], np.uint8))


def test_recoding_rejects_non_classes() -> None:
    with pytest.raises(SpecMismatchError, match="253"):
        clcplus.recode(np.ones((2, 2), np.uint8), np.full((2, 2), 253, np.uint8))


TRANSFORM = Affine(10, 0, 4_000_000, 0, -10, 3_000_300)


def _geojson(tmp_path: Path, props: dict, crs: str | None = "EPSG:3035") -> Path:
    poly = {
        "type": "Polygon",
        "coordinates": [
            [
                [4_000_050, 3_000_250],
                [4_000_150, 3_000_250],
                [4_000_150, 3_000_150],
                [4_000_050, 3_000_150],
                [4_000_050, 3_000_250],
            ]
        ],
    }
    doc: dict = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": poly, "properties": props}],
    }
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path = tmp_path / "corrections.geojson"
    path.write_text(json.dumps(doc))
    return path


def test_corrections_from_geojson_are_rasterised_on_the_grid(tmp_path: Path) -> None:
    targets = load_corrections(
        str(_geojson(tmp_path, {"class": 1})), (30, 30), TRANSFORM, "EPSG:3035", allowed=range(1, 12)
    )
    assert targets.sum() == 100
    feats, crs = read_features(str(_geojson(tmp_path, {"class": 1})))
    targets = rasterize_classes(feats, crs, "class", (30, 30), TRANSFORM, "EPSG:3035", allowed=range(1, 12))
    assert targets.sum() == 100  # 10 x 10 pixels
    assert (targets[5:15, 5:15] == 1).all()
    mask = load_mask(str(_geojson(tmp_path, {})), (30, 30), TRANSFORM, "EPSG:3035")
    assert mask.sum() == 100


def test_corrections_name_the_missing_field(tmp_path: Path) -> None:
    feats, crs = read_features(str(_geojson(tmp_path, {"code": 1})))
    with pytest.raises(VectorInputError, match="'class'"):
        rasterize_classes(feats, crs, "class", (30, 30), TRANSFORM, "EPSG:3035")
    feats, crs = read_features(str(_geojson(tmp_path, {"class": 42})))
    with pytest.raises(VectorInputError, match="42"):
        rasterize_classes(feats, crs, "class", (30, 30), TRANSFORM, "EPSG:3035", allowed=range(1, 12))


def test_corrections_from_geopackage(tmp_path: Path) -> None:
    """A GeoPackage (built with sqlite3 in the GeoPackage binary encoding) with a target class."""
    import sqlite3
    import struct

    from shapely.geometry import box

    geom = box(4_000_050, 3_000_150, 4_000_150, 3_000_250)
    blob = b"GP" + bytes([0, 0b0000_0011]) + struct.pack("<i", 3035) + struct.pack("<4d", *geom.bounds)
    blob += geom.wkb
    path = tmp_path / "fix.gpkg"
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT, srs_id INTEGER PRIMARY KEY, organization TEXT,"
        " organization_coordsys_id INTEGER, definition TEXT);"
        "INSERT INTO gpkg_spatial_ref_sys VALUES ('LAEA', 3035, 'EPSG', 3035, 'undefined');"
        "CREATE TABLE gpkg_geometry_columns (table_name TEXT, column_name TEXT, geometry_type_name TEXT,"
        " srs_id INTEGER, z TINYINT, m TINYINT);"
        "INSERT INTO gpkg_geometry_columns VALUES ('fixes', 'geom', 'POLYGON', 3035, 0, 0);"
        "CREATE TABLE fixes (fid INTEGER PRIMARY KEY, geom BLOB, class INTEGER);"
    )
    con.execute("INSERT INTO fixes VALUES (1, ?, 9)", (blob,))
    con.commit()
    con.close()
    feats, crs = read_features(str(path))
    targets = rasterize_classes(feats, crs, "class", (30, 30), TRANSFORM, "EPSG:3035", allowed=range(1, 12))
    assert (targets[5:15, 5:15] == 9).all() and targets.sum() == 900


def test_per_direction_percentiles_use_each_directions_own_distribution() -> None:
    h, w = 20, 20
    prev = _onehot_like(np.full((h, w), _index(6)), np.full((h, w), 0.6, np.float32))
    now_idx = np.where(np.arange(w)[None, :] < 10, _index(7), _index(9)).repeat(h, axis=0)
    p_top = np.where(np.arange(w)[None, :] < 10, 0.5, 0.9).repeat(h, axis=0).astype(np.float32)
    p_top = p_top + np.linspace(0, 0.05, h * w, dtype=np.float32).reshape(h, w)
    now = _onehot_like(now_idx, p_top)
    valid = np.ones((h, w), bool)
    cfg = clcplus.CalibrationConfig(per_direction=True, min_samples=50)
    cal = clcplus.calibrate(now, prev, valid, config=cfg)
    d7, d9 = clcplus.change_measure(now, prev)[:, :10], clcplus.change_measure(now, prev)[:, 10:]
    assert cal.thresholds[(6, 7)] == pytest.approx(float(np.percentile(d7, 90)))
    assert cal.thresholds[(6, 9)] == pytest.approx(float(np.percentile(d9, 50)))
    pooled = clcplus.calibrate(now, prev, valid).thresholds
    assert pooled[(6, 7)] != cal.thresholds[(6, 7)]
