"""Production-unit blending through the steps: postprocess two roll-out tiles, assemble their cell.

Two units, west and east, meet at x = BORDER, 100 m west of the edge between two roll-out tiles
(E44N30 r1c1 | r1c2). Each is predicted (synthetic, known probabilities) over its own area plus a
200 m buffer, a scaled-down version of the production lines' 10 km, so their predictions overlap
over 400 m: 300 m on the western tile, 100 m on the eastern one. In the overlap the blended
probabilities must be the weighted mean with the west unit's weight 0.5 + (BORDER - x) / (2 B)
(the east's is 1 minus it: 0.5 each at the border), on both tiles alike; beyond it, each unit's own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from landstack.catalog.items import check_item
from landstack.pipelines.inference.units import tile_units
from landstack.pipelines.products import blending, codes
from landstack.pipelines.steps import run_step
from landstack.storage import ObjectStore

from ._predictions import RAS_CLASSES, constant_probabilities, encode, grid, write_prediction

YEAR = 2023
BORDER = 4_449_900.0
BUFFER = 200.0
TOP, ROWS, COLS = 3_060_300.0, 30, 100
TILES = {"E44N30-25K-r1c1": 4_449_000.0, "E44N30-25K-r1c2": 4_450_000.0}
P_WEST = {1: 0.7, 2: 0.2, 3: 0.1}
P_EAST = {5: 0.7, 2: 0.1, 3: 0.2}


def _units(path: Path) -> str:
    def unit(name: str, x0: float, x1: float) -> dict[str, Any]:
        ring = [[x0, 2.9e6], [x1, 2.9e6], [x1, 3.2e6], [x0, 3.2e6], [x0, 2.9e6]]
        return {
            "type": "Feature",
            "properties": {"unit": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }

    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [unit("west", 4.3e6, BORDER), unit("east", BORDER, 4.6e6)],
            }
        )
    )
    return path.as_uri()


def _predict(store: ObjectStore, units_url: str, with_polygons: bool = True) -> list[str]:
    """A prediction item per roll-out tile, laid out as the predict step lays units out."""
    urls = []
    for tile, left in TILES.items():
        g = grid(left, TOP, COLS, ROWS)
        units = tile_units(units_url, g, BUFFER)  # the predict step's own unit areas
        probs = {"west": P_WEST, "east": P_EAST}
        assets = {
            f"clcplus-backbone-{u.unit}": (
                encode(constant_probabilities(probs[u.unit], g.shape), u.area),
                list(RAS_CLASSES),
            )
            for u in units.units
        }
        assets["units"] = (units.index[None], ["unit_index"])
        props: dict[str, Any] = {blending.UNITS_PROPERTY: units.names, blending.BUFFER_PROPERTY: BUFFER}
        if with_polygons:
            props |= {blending.SOURCE_PROPERTY: units_url, blending.ID_PROPERTY: "unit"}
        urls.append(write_prediction(store, tile, g, YEAR, assets, props))
    return urls


def _expected(x: np.ndarray) -> np.ndarray:
    """Blended probabilities (11, len(x)) at pixel-centre x."""
    w = np.clip(0.5 + (BORDER - x) / (2 * BUFFER), 0.0, 1.0)
    pw = constant_probabilities(P_WEST, (1, 1))[:, 0, 0]
    pe = constant_probabilities(P_EAST, (1, 1))[:, 0, 0]
    return pw[:, None] * w + pe[:, None] * (1 - w)


def _read(href: str) -> tuple[np.ndarray, float]:
    with rasterio.open(href) as ds:
        return ds.read(), ds.transform.c


def _centres(left: float, n: int) -> np.ndarray:
    return left + 10.0 * (np.arange(n) + 0.5)


@pytest.fixture
def blended(tmp_path: Path) -> tuple[ObjectStore, list[dict[str, Any]]]:
    store = ObjectStore((tmp_path / "store").as_uri())
    preds = _predict(store, _units(tmp_path / "units.geojson"))
    outs = [
        run_step("postprocess", {"prediction": u, "families": ["clcplus-backbone"]}, store=store)
        for u in preds
    ]
    return store, outs


def test_blended_probabilities_are_the_weighted_mean(
    blended: tuple[ObjectStore, list[dict[str, Any]]],
) -> None:
    store, outs = blended
    for out, left in zip(outs, TILES.values(), strict=True):
        enc, origin = _read(out["layers"]["clcplus-probabilities"])
        assert origin == left and enc.shape == (11, ROWS, COLS)
        x = _centres(left, COLS)
        want = np.rint(_expected(x) * 250)
        got = enc.astype(float)
        assert np.abs(got - want[:, None, :]).max() <= 1, (left, got[:, 0, :] - want)
        # away from the overlap each unit's own probabilities, exactly
        own_w = x < BORDER - BUFFER
        own_e = x > BORDER + BUFFER
        for own in (own_w, own_e):
            np.testing.assert_array_equal(
                enc[:, :, own], np.broadcast_to(want[:, None, own], enc[:, :, own].shape)
            )
        item = store.read_json(store.key_of(out["item"]))
        assert item["properties"]["landstack:blended_units"] == 2
        check_item(item)
    # 0.5 at the centre: the pixels either side of the border mirror each other
    west_tile, _ = _read(outs[0]["layers"]["clcplus-probabilities"])
    col = round((BORDER - 4_449_000.0) / 10)
    p1 = west_tile[0, :, col - 1].astype(int) + west_tile[4, :, col - 1]  # class 1 + class 5 west of it
    q1 = west_tile[0, :, col].astype(int) + west_tile[4, :, col]
    assert (np.abs(p1 - 175) <= 1).all() and (np.abs(q1 - 175) <= 1).all()
    assert (np.abs(west_tile[0, :, col - 1].astype(int) - west_tile[4, :, col]) <= 1).all()


def test_assembled_layers_follow_the_blend(blended: tuple[ObjectStore, list[dict[str, Any]]]) -> None:
    store, _ = blended
    out = run_step(
        "assemble", {"product_tile": "E44N30", "year": YEAR, "families": ["clcplus-backbone"]}, store=store
    )
    docs = {
        store.read_json(store.key_of(u))["collection"]: store.read_json(store.key_of(u)) for u in out["items"]
    }
    ras, left = _read(docs[codes.CLCPLUS_RAS]["assets"]["data"]["href"])
    rascl, _ = _read(docs[codes.CLCPLUS_RASCL]["assets"]["data"]["href"])
    raspl, _ = _read(docs[codes.CLCPLUS_RASPL]["assets"]["data"]["href"])
    assert left == 4_449_000.0 and ras.shape == (1, ROWS, 2 * COLS)
    p = _expected(_centres(left, 2 * COLS))
    top2 = np.sort(p, axis=0)[::-1]
    want_ras = np.asarray([int(c) for c in RAS_CLASSES])[np.argmax(p, axis=0)]
    want_rascl = np.rint(100 * (top2[0] - top2[1]))
    assert (ras[0] == want_ras[None, :]).all()
    assert np.abs(rascl[0].astype(float) - want_rascl[None, :]).max() <= 1
    assert (rascl[0][:, _centres(left, 2 * COLS) < BORDER - BUFFER] == 50).all()  # the unit's own 0.7 - 0.2
    assert (raspl == 0).all()
    for doc in docs.values():
        check_item(doc)


def test_without_polygons_the_unit_index_gives_the_weights_on_the_tile(tmp_path: Path) -> None:
    """An item not naming its polygons blends from the unit index: exact where the border is on the tile."""
    store = ObjectStore((tmp_path / "store").as_uri())
    url = _predict(store, _units(tmp_path / "units.geojson"), with_polygons=False)[0]
    out = run_step("postprocess", {"prediction": url, "families": ["clcplus-backbone"]}, store=store)
    enc, left = _read(out["layers"]["clcplus-probabilities"])
    want = np.rint(_expected(_centres(left, COLS)) * 250)
    assert np.abs(enc.astype(float) - want[:, None, :]).max() <= 1  # the border is on this tile
