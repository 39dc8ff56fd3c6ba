"""The postprocess step streams: small blocks give every layer exactly as the whole-array chain does.

A synthetic prediction item (every family, no-data patches, an outside-area strip, a sea mask and
correction areas) is post-processed with 64 px blocks, so blocks, halos (bilateral filter,
greenness, blending weights over a 250 m buffer) and the two calibration passes are all
exercised; each layer the step wrote is compared with the whole-array functions of the product
library on the same inputs.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

from landstack.catalog.grid import Tile, TileGrid
from landstack.pipelines.inference.predict import Prediction
from landstack.pipelines.inference.publishing import prediction_item
from landstack.pipelines.products import (
    blend_blocks,
    blending,
    cisc,
    clcplus,
    clcplus_blocks,
    codes,
    emc_built,
    hrl,
    intermediates,
    vectors,
)
from landstack.pipelines.steps import _postprocess
from landstack.pipelines.steps.products import PostprocessInput, PostprocessParameters
from landstack.storage import ObjectStore

YEAR = 2023
LEFT, TOP = 4_800_000.0, 2_850_000.0
H, W = 230, 270  # not multiples of the 64 px blocks
BLOCK = 64
SCORE_NODATA = 65535
# production units "0" and "1" (their cores in the `units` index asset), blended over 250 m
UNIT_PROPERTIES = {"landstack:units": ["0", "1"], "landstack:unit_buffer_m": 250.0}


def _grid(h: int = H, w: int = W) -> TileGrid:
    return TileGrid("EPSG:3035", Affine(10.0, 0.0, LEFT, 0.0, -10.0, TOP), (h, w))


def _probabilities(rng: np.random.Generator, n: int, h: int, w: int, parcel: int = 23) -> np.ndarray:
    """Encoded (uint8 0-250) probabilities of spatially coherent classes with noise."""
    parcels = rng.integers(0, n, (h // parcel + 1, w // parcel + 1))
    cls = np.repeat(np.repeat(parcels, parcel, 0), parcel, 1)[:h, :w]
    logits = rng.normal(0, 1, (n, h, w)).astype(np.float32)
    np.put_along_axis(logits, cls[None], 2.5 + rng.normal(0, 1.5, (1, h, w)).astype(np.float32), 0)
    prob = np.exp(logits) / np.exp(logits).sum(axis=0)
    return clcplus.encode_probabilities(prob, np.ones((h, w), bool))


def _inputs(seed: int, units: int = 1) -> dict[str, tuple[np.ndarray, list[str]]]:
    rng = np.random.default_rng(seed)
    ras_bands = [str(c) for c in clcplus.class_codes()]
    score = rng.integers(0, 150, (1, H, W)).astype(np.uint16)
    score[0, :, -13:] = SCORE_NODATA  # outside the production area
    out: dict[str, tuple[np.ndarray, list[str]]] = {"data-score": (score, ["data_score"])}
    for k in range(units):
        enc = _probabilities(rng, 11, H, W)
        enc[:, 40:47, 100:130] = clcplus.PROB_NODATA  # no data inside the tile
        if units > 1:  # each unit covers its part plus an overlap (its buffered footprint)
            lo, hi = (0, 160) if k == 0 else (110, W)
            enc[:, :, :lo] = clcplus.PROB_NODATA
            enc[:, :, hi:] = clcplus.PROB_NODATA
        out[f"clcplus-backbone-{k}" if units > 1 else "clcplus-backbone"] = (enc, ras_bands)
    if units > 1:  # the unit index: cores split at column 135, footprints one buffer (25 px) wider
        index = np.ones((1, H, W), np.uint16)
        index[0, :, 135:] = 2
        out["units"] = (index, ["unit"])
    imd = np.clip(rng.normal(30, 40, (1, H, W)), 0, 100).astype(np.float32)
    imd[0, 200:, :20] = np.nan
    out["hrl-imperviousness"] = (imd, ["imd"])
    built = np.zeros((2, H, W), np.float32)
    for _ in range(25):  # built-up clusters, some near block borders
        r, c = rng.integers(0, H - 8), rng.integers(0, W - 8)
        built[0, r : r + 8, c : c + 8] = rng.uniform(20, 100)
    built[1] = built[0] * 0.4
    built[:, 150:155, 150:170] = np.nan
    out["emc-built"] = (built, ["S", "NRES"])
    ndvi = rng.uniform(0.0, 0.9, (H, W)).astype(np.float32)
    ndvi[60:64, :] = np.nan
    ndwi = rng.uniform(-0.5, 0.4, (H, W)).astype(np.float32)
    out["medians"] = (np.stack([ndvi, ndwi]), ["NDVI_median", "NDWI_median"])
    out["cisc"] = (_probabilities(rng, 4, H, W), ["0", "1", "2", "3"])
    return out


def _write_prediction(
    store: ObjectStore,
    work: Path,
    year: int,
    assets: dict[str, Any],
    properties: dict[str, Any] | None = None,
) -> str:
    """The prediction item of these assets; `assets` then holds the values as stored.

    (The predictions' COG conversion takes a 4-band uint8 raster for RGBA and blanks the pixels
    whose fourth band is 0, so the stored CISC probabilities differ from the written ones.)
    """
    grid = _grid()
    pred = Prediction()
    for key, (values, bands) in assets.items():
        path = work / f"{year}-{key}.tif"
        nodata = {"uint8": 255, "uint16": SCORE_NODATA, "float32": float("nan")}[str(values.dtype)]
        nodata = 0 if key == "units" else nodata
        profile = {
            "driver": "GTiff",
            "width": W,
            "height": H,
            "count": values.shape[0],
            "dtype": str(values.dtype),
            "crs": grid.crs,
            "transform": grid.transform,
            "nodata": nodata,
        }
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(values)
            for i, b in enumerate(bands, start=1):
                dst.set_band_description(i, b)
        pred.files[key], pred.bands[key] = path, bands
        if key not in ("data-score", "medians", "units"):
            pred.models[key] = f"synthetic-{key}:1"
    url, hrefs = prediction_item(store, Tile("T1", grid), year, pred, work, properties)
    for key in assets:  # the references start from what the store holds (see _stored)
        with rasterio.open(hrefs[key]) as ds:
            assets[key] = (ds.read(), assets[key][1])
    return url


def _vectors(tmp: Path) -> tuple[str, str]:
    """A sea polygon (edges on pixel borders and one slanted edge) and two correction areas."""
    crs = {"type": "name", "properties": {"name": "EPSG:3035"}}

    def poly(coords: list[tuple[float, float]], props: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "Feature",
            "properties": props,
            "geometry": {"type": "Polygon", "coordinates": [coords]},
        }

    x0, y0 = LEFT, TOP
    sea = [(x0, y0), (x0 + 900, y0), (x0 + 400, y0 - 1500), (x0, y0 - 1500), (x0, y0)]
    fix_a = [(x0 + 1000, y0 - 500), (x0 + 1700, y0 - 500), (x0 + 1700, y0 - 1200), (x0 + 1000, y0 - 1200)]
    fix_b = [(x0 + 600, y0 - 1800), (x0 + 2200, y0 - 1800), (x0 + 2200, y0 - 2050), (x0 + 600, y0 - 2050)]
    sea_path, fix_path = tmp / "sea.geojson", tmp / "corrections.geojson"
    sea_path.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": [poly(sea, {})]}))
    fixes = [poly([*fix_a, fix_a[0]], {"class": 1}), poly([*fix_b, fix_b[0]], {"class": 9})]
    fix_path.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": fixes}))
    return str(sea_path), str(fix_path)


def _read(url: str) -> np.ndarray:
    with rasterio.open(url) as ds:
        return np.asarray(ds.read() if ds.count > 1 else ds.read(1))


def _run(store: ObjectStore, url: str, previous: int, params: PostprocessParameters) -> dict[str, np.ndarray]:
    inp = PostprocessInput(prediction=url, previous_year=previous, parameters=params)
    _, urls = _postprocess.run(store, inp)
    return {name: _read(u) for name, u in urls.items()}


def _cisc_whole(enc: np.ndarray, score: np.ndarray, grid: TileGrid, min_valid: int) -> cisc.CiscLayers:
    """The whole-array CISC chain (argmax, 10 m onto the 30 m grid's 10 m version, majority)."""
    spec = codes.layer(codes.CISC_CLASSES)
    prob, valid = clcplus.decode_probabilities(enc)
    order = np.array(codes.thematic_codes(spec), np.uint8)
    classes = np.where(valid, order[np.argmax(prob, axis=0)], spec.nodata).astype(np.uint8)
    g30, (r, c) = intermediates.cisc_grid(grid)
    fine = np.full((g30.height * 3, g30.width * 3), spec.nodata, np.uint8)
    inside = np.zeros(fine.shape, bool)
    fine[r : r + grid.height, c : c + grid.width] = classes
    inside[r : r + grid.height, c : c + grid.width] = score != SCORE_NODATA
    inside30 = np.asarray(inside.reshape(g30.height, 3, g30.width, 3).any(axis=(1, 3)), bool)
    return cisc.cisc_layers(fine, inside30, min_valid=min_valid)


def _equal(name: str, got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    np.testing.assert_array_equal(got, want, err_msg=f"layer {name} differs from the whole-array result")


def test_streaming_step_equals_the_whole_array_chain(tmp_path: Path) -> None:
    store = ObjectStore((tmp_path / "store").as_uri())
    sea_url, fix_url = _vectors(tmp_path)
    params = PostprocessParameters(block=BLOCK, sea_mask=sea_url, corrections=fix_url, change_tolerance=3)
    first, second = _inputs(1), _inputs(2)
    out1 = _run(store, _write_prediction(store, tmp_path, YEAR - 1, first), 0, params)
    out2 = _run(store, _write_prediction(store, tmp_path, YEAR, second), YEAR - 1, params)

    grid = _grid()
    crs = grid.crs
    sea = vectors.load_mask(sea_url, grid.shape, grid.transform, crs)
    allowed = codes.thematic_codes(codes.layer(codes.CLCPLUS_RAS))
    fixes = vectors.load_corrections(fix_url, grid.shape, grid.transform, crs, allowed)
    assert sea.any() and (fixes == 1).any() and (fixes == 9).any()
    prev_imd = None
    for year_inputs, out, prev in ((first, out1, None), (second, out2, first["clcplus-backbone"][0])):
        enc = year_inputs["clcplus-backbone"][0]
        score = year_inputs["data-score"][0][0]
        inside = score != SCORE_NODATA
        thresholds = (
            clcplus_blocks.change_thresholds(enc, prev, block=max(H, W)) if prev is not None else None
        )
        whole = clcplus.clcplus_layers(
            enc,
            score,
            prev_encoded=prev,
            production_area=inside,
            sea=sea,
            corrections=fixes,
            thresholds=thresholds,
        )
        _equal("clcplus-probabilities", out["clcplus-probabilities"], enc)
        for name in ("ras", "rascl", "rasdl", "raspl"):
            _equal(name, out[name], getattr(whole, name))
        h = hrl.hrl_layers(
            emc_built.ensemble_mean([year_inputs["hrl-imperviousness"][0][0]]),
            whole.ras,
            valid=inside,
            previous_imd=prev_imd,
            change_tolerance=3,
        )
        _equal("imd", out["imd"], h.imd)
        _equal("sealing-mask", out["sealing-mask"], h.sealing_mask)
        if h.change is not None:
            _equal("change", out["change"], h.change)
        prev_imd = h.imd
        built = year_inputs["emc-built"][0]
        ndvi, ndwi = year_inputs["medians"][0]
        emc = emc_built.emc_layers_10m([built[0] / 100.0], [built[1] / 100.0], ndwi, ndvi)
        for product in ("s", "nres", "greenness"):
            _equal(f"emc-{product}", out[f"emc-{product}"], emc[product])
        c = _cisc_whole(year_inputs["cisc"][0], score, grid, params.cisc_min_valid)
        _equal("cisc-classes", out["cisc-classes"], c.classes)
        _equal("cisc-valid-mask", out["cisc-valid-mask"], c.valid_mask)
    assert "change" in out2 and "change" not in out1
    assert np.isfinite(out2["emc-greenness"]).mean() > 0.3  # the greenness domain spans blocks
    assert (out2["raspl"] == 1).any()  # the corrections recoded something


def test_streaming_blend_of_production_units_equals_the_whole_tile(tmp_path: Path) -> None:
    store = ObjectStore((tmp_path / "store").as_uri())
    params = PostprocessParameters(block=BLOCK)
    first, second = _inputs(3, units=2), _inputs(4, units=2)
    families = ["clcplus-backbone"]
    out = []
    for year, inputs, previous in ((YEAR - 1, first, 0), (YEAR, second, YEAR - 1)):
        url = _write_prediction(store, tmp_path, year, inputs, UNIT_PROPERTIES)
        inp = PostprocessInput(prediction=url, previous_year=previous, parameters=params, families=families)
        _, urls = _postprocess.run(store, inp)
        out.append({name: _read(u) for name, u in urls.items()})

    blended = []
    for year, inputs in ((YEAR - 1, first), (YEAR, second)):
        doc = store.read_json(f"predictions/{year}/T1/item.json")
        cores = blending.production_cores(doc, ["0", "1"], _grid())
        encs = [inputs[f"clcplus-backbone-{k}"][0] for k in range(2)]
        avail = [clcplus.decode_probabilities(e)[1] for e in encs]
        weights = cores.weights(slice(0, H), slice(0, W), avail)
        blended.append(blending.blend_encoded(encs, weights))
    thresholds = clcplus_blocks.change_thresholds(
        blended[1], blended[0], block=max(H, W), filter_inputs=False
    )
    for k, prev in ((0, None), (1, blended[0])):
        score = (first, second)[k]["data-score"][0][0]
        whole = clcplus.clcplus_layers(
            blended[k],
            score,
            prev_encoded=prev,
            production_area=score != SCORE_NODATA,
            thresholds=thresholds if prev is not None else None,
            filter_inputs=False,
        )
        _equal("clcplus-probabilities", out[k]["clcplus-probabilities"], blended[k])
        for name in ("ras", "rascl", "rasdl", "raspl"):
            _equal(name, out[k][name], getattr(whole, name))
    item = store.read_json(f"intermediates/{YEAR}/T1/item.json")
    assert item["properties"]["landstack:blended_units"] == 2
    assert item["properties"]["landstack:calibrated"] is True


def test_blend_blocks_use_the_weight_halo() -> None:
    """A buffer of 200 m (21 px of halo) on a 150 x 200 tile with 32 px blocks: the blending
    weights of every block need pixels of its neighbours."""
    rng = np.random.default_rng(5)
    h, w = 150, 200
    encs = []
    for lo, hi in ((0, 120), (80, w)):
        enc = _probabilities(rng, 11, h, w)
        enc[:, :, :lo] = clcplus.PROB_NODATA
        enc[:, :, hi:] = clcplus.PROB_NODATA
        enc[:, 10:14, 90:95] = clcplus.PROB_NODATA
        encs.append(enc)
    avail = [clcplus.decode_probabilities(e)[1] for e in encs]
    weights = blending.unit_weights(avail, buffer=200.0, pixel_size=10.0, available=avail)
    want = blending.blend_encoded(encs, weights)
    got = np.zeros_like(want)
    for win, block in blend_blocks.blend_blocks(encs, avail, block=32, pixel_size=10.0, buffer=200.0):
        got[:, win.row_off : win.row_off + win.height, win.col_off : win.col_off + win.width] = block
    np.testing.assert_array_equal(got, want)


def test_emc_blocks_equal_the_whole_tile() -> None:
    rng = np.random.default_rng(6)
    h, w = 250, 330
    base = np.zeros((h, w), np.float32)
    for _ in range(12):  # sparse built-up clusters: the greenness domain has borders in many blocks
        r, c = rng.integers(0, h - 6), rng.integers(0, w - 6)
        base[r : r + 6, c : c + 6] = rng.uniform(0.2, 1.0)
    s = [base, base * np.float32(0.8)]
    nres = [m * 0.3 for m in s]
    ndwi = rng.uniform(-0.5, 0.4, (h, w)).astype(np.float32)
    ndvi = rng.uniform(0.0, 0.9, (h, w)).astype(np.float32)
    want = emc_built.emc_layers_10m(s, nres, ndwi, ndvi)
    got = {k: np.full((h, w), -1.0, np.float32) for k in want}
    for win, layers in emc_built.emc_blocks(s, nres, ndwi, ndvi, block=100):
        for k, v in layers.items():
            got[k][win.row_off : win.row_off + win.height, win.col_off : win.col_off + win.width] = v
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    assert np.isfinite(want["greenness"]).any() and np.isnan(want["greenness"]).any()
    with pytest.raises(Exception, match="multiples of 10"):
        next(emc_built.emc_blocks(s, nres, ndwi, ndvi, block=64))


def test_step_memory_follows_the_block(tmp_path: Path) -> None:
    """CLCplus on a 768 x 768 tile with 128 px blocks: the Python heap stays far below the tile's
    float probabilities (what the whole-array chain holds several times over)."""
    n = 768
    rng = np.random.default_rng(7)
    grid = TileGrid("EPSG:3035", Affine(10.0, 0.0, LEFT, 0.0, -10.0, TOP), (n, n))
    store = ObjectStore((tmp_path / "store").as_uri())
    pred = Prediction()
    profile = {"driver": "GTiff", "width": n, "height": n, "crs": grid.crs, "transform": grid.transform}
    profile |= {"tiled": True, "blockxsize": 256, "blockysize": 256}
    enc_path, score_path = tmp_path / "enc.tif", tmp_path / "score.tif"
    with (
        rasterio.open(enc_path, "w", count=11, dtype="uint8", nodata=255, **profile) as enc,
        rasterio.open(score_path, "w", count=1, dtype="uint16", nodata=SCORE_NODATA, **profile) as score,
    ):
        for r in range(0, n, 256):  # written in strips: the test itself never holds the tile
            win = rasterio.windows.Window(0, r, n, 256)
            enc.write(_probabilities(rng, 11, 256, n), window=win)
            score.write(np.full((1, 256, n), 30, np.uint16), window=win)
        enc.descriptions = tuple(str(c) for c in clcplus.class_codes())
    pred.files = {"data-score": score_path, "clcplus-backbone": enc_path}
    pred.bands = {"data-score": ["data_score"], "clcplus-backbone": [str(c) for c in clcplus.class_codes()]}
    url, _ = prediction_item(store, Tile("T1", grid), YEAR, pred, tmp_path)
    inp = PostprocessInput(
        prediction=url, families=["clcplus-backbone"], parameters=PostprocessParameters(block=128)
    )
    tracemalloc.start()
    try:
        _, urls = _postprocess.run(store, inp)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole_floats = 11 * n * n * 4
    assert peak < whole_floats / 4, f"peak {peak / 2**20:.1f} MiB vs {whole_floats / 2**20:.0f} MiB of floats"
    with rasterio.open(urls["ras"]) as ds:
        assert ds.shape == (n, n) and ds.block_shapes[0] == (512, 512)
