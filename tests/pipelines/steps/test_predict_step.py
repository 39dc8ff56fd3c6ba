"""`predict` as a step: a synthetic archive clipped to a small area of one roll-out tile.

All product families with tiny registered models, in process and through a real model-server
process (both give the same probabilities), the item valid offline, re-runs writing nothing, and
production units meeting inside the tile.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from landstack.catalog.grid import Aoi, RolloutTile, transformer
from landstack.pipelines.inference.predict import PROB_NODATA, SCORE_NODATA
from landstack.pipelines.steps import run_step
from landstack.storage import ObjectStore

from ...conftest import shared_path
from ..conftest import REFERENCE_YEAR
from .conftest import snapshot

pytestmark = pytest.mark.slow

LON, LAT = 16.305, 48.2  # east of the archive's centre: the east edge of the AOI has no data
MODELS = {
    "clcplus-backbone": "tempcnn",
    "hrl-imperviousness": "unet-imd",
    "emc-built": "unet-imd",
    "cisc": "impervious",
}
SERVED = "tempcnn,tempcnn-west,unet-imd,impervious"


def _area() -> tuple[list[float], str, tuple[float, float, float, float]]:
    """The step's AOI (EPSG:4326 bbox), the roll-out tile holding it, and its EPSG:3035 bounds."""
    aoi = Aoi.around(LON, LAT, 800)
    bbox = list(aoi.to_crs("EPSG:4326"))
    x0, y0, x1, y1 = Aoi(tuple(bbox), "EPSG:4326").to_crs("EPSG:3035")  # type: ignore[arg-type]
    tile = RolloutTile.at((x0 + x1) / 2, (y0 + y1) / 2)
    assert tile.bounds[0] < x0 and x1 < tile.bounds[2] and tile.bounds[1] < y0 and y1 < tile.bounds[3]
    return bbox, tile.code, (x0, y0, x1, y1)


def _input(s2_archive: Any, registry: str, **extra: Any) -> dict[str, Any]:
    store, result, _cfg = s2_archive
    bbox, tile, _ = _area()
    return {
        "tile": tile,
        "aoi": bbox,
        "year": REFERENCE_YEAR,
        "source": store.href(result.collection_key),
        "models": MODELS,
        "registry_url": registry,
        "window": 64,
        "halo": 16,
        **extra,
    }


def _read(url: str) -> tuple[np.ndarray, Any]:
    with rasterio.open(url) as src:
        return src.read(), src.profile


@pytest.fixture(scope="module")
def local_run(s2_archive: Any, tiny_registry: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = ObjectStore(tmp_path_factory.mktemp("predict-local").as_uri())
    inp = _input(s2_archive, tiny_registry)
    return store, inp, run_step("predict", inp, store)


@pytest.fixture(scope="module")
def model_server(tiny_registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from landstack.model_server.process import serve

    env = {
        "LANDSTACK_MODEL_SERVER_REGISTRY_URL": tiny_registry,
        "LANDSTACK_MODEL_SERVER_MODELS": SERVED,
        "LANDSTACK_MODEL_SERVER_TORCH_THREADS": "1",
    }
    with serve(env, tmp_path_factory.mktemp("server") / "server.log") as served:
        yield served.url


def test_local_predicts_every_family_with_nodata_where_no_observation(local_run: Any) -> None:
    from landstack.catalog.items import check_item

    _store, _inp, out = local_run
    assert set(out["assets"]) == {"data-score", "medians", *MODELS}
    assert out["item"].endswith(f"predictions/{REFERENCE_YEAR}/{_input_tile()}/item.json")
    doc = json.loads(Path(out["item"].removeprefix("file://")).read_text())
    check_item(doc, shared_path("schemas", "stac"))
    assert doc["properties"]["landstack:models"]["clcplus-backbone"] == "tempcnn:1"

    score, prof = _read(out["assets"]["data-score"])
    assert prof["crs"].to_epsg() == 3035 and prof["nodata"] == SCORE_NODATA
    valid = score[0] > 0
    assert 0.5 * valid.size < valid.sum() < valid.size  # the east strip lies beyond the archive
    assert out["valid_pixels"] == int(valid.sum())
    probs, prof = _read(out["assets"]["clcplus-backbone"])
    assert probs.shape[0] == 11 and prof["dtype"] == "uint8"
    assert np.all(probs[:, ~valid] == PROB_NODATA)
    assert np.all(np.abs(probs[:, valid].astype(int).sum(axis=0) - 250) <= 6)
    cisc, _ = _read(out["assets"]["cisc"])
    assert cisc.shape[0] == 4 and np.all(cisc[:, ~valid] == PROB_NODATA) and np.all(cisc[:, valid] <= 250)
    for family in ("hrl-imperviousness", "emc-built"):
        values, prof = _read(out["assets"][family])
        assert prof["dtype"] == "float32"
        assert np.isfinite(values[0][valid]).all() and np.isnan(values[0][~valid]).all()


def _input_tile() -> str:
    return _area()[1]


def test_rerun_writes_nothing(local_run: Any) -> None:
    store, inp, out = local_run
    root = Path(store.url.removeprefix("file://"))
    before = snapshot(root)
    assert run_step("predict", inp, store) == out
    assert snapshot(root) == before


def test_kserve_backend_gives_the_same_probabilities(
    local_run: Any, s2_archive: Any, tiny_registry: str, model_server: str, tmp_path: Path
) -> None:
    _store, _inp, local = local_run
    store = ObjectStore((tmp_path / "served").as_uri())
    inp = _input(s2_archive, tiny_registry, backend="kserve", model_servers={"*": model_server})
    served = run_step("predict", inp, store)
    assert set(served["assets"]) == set(local["assets"])
    assert served["valid_pixels"] == local["valid_pixels"]
    for key in ("clcplus-backbone", "cisc"):
        a, _ = _read(local["assets"][key])
        b, _ = _read(served["assets"][key])
        assert np.array_equal(a == PROB_NODATA, b == PROB_NODATA)
        # FP16 on the wire: a probability moves by at most a step or two of the 0-250 scale
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 2, key
    for key in ("hrl-imperviousness", "emc-built"):
        a, _ = _read(local["assets"][key])
        b, _ = _read(served["assets"][key])
        assert np.array_equal(np.isnan(a), np.isnan(b))
        assert np.nanmax(np.abs(a - b)) < 0.5, key


def _units_geojson(path: Path) -> tuple[str, float]:
    """Units 'west' and 'east' meeting at the AOI's middle (EPSG:4326 with a crs member)."""
    _, _, (x0, y0, x1, y1) = _area()
    xm = round((x0 + x1) / 2 / 10) * 10
    to_wgs = transformer("EPSG:3035", "EPSG:4326")

    def ring(a: float, b: float) -> list[list[float]]:
        corners = [(a, y0 - 5000), (b, y0 - 5000), (b, y1 + 5000), (a, y1 + 5000), (a, y0 - 5000)]
        return [list(to_wgs.transform(x, y)) for x, y in corners]

    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        "features": [
            {
                "type": "Feature",
                "properties": {"unit": u},
                "geometry": {"type": "Polygon", "coordinates": [r]},
            }
            for u, r in (("west", ring(x0 - 5000, xm)), ("east", ring(xm, x1 + 5000)))
        ],
    }
    path.write_text(json.dumps(doc))
    return path.as_uri(), xm


def test_units_meeting_inside_the_tile(s2_archive: Any, tiny_registry: str, tmp_path: Path) -> None:
    units, xm = _units_geojson(tmp_path / "units.geojson")
    store = ObjectStore((tmp_path / "store").as_uri())
    inp = _input(
        s2_archive,
        tiny_registry,
        families=["clcplus-backbone", "hrl-imperviousness"],
        units=units,
        unit_buffer_m=100,
    )
    out = run_step("predict", inp, store)
    expected = {f"{f}-{u}" for f in ("clcplus-backbone", "hrl-imperviousness") for u in ("west", "east")}
    assert set(out["assets"]) == {"data-score", "medians", "units", *expected}
    doc = json.loads(Path(out["item"].removeprefix("file://")).read_text())
    props = doc["properties"]
    assert props["landstack:units"] == ["west", "east"]
    # west has its own model; east has none and no fallback is registered: the family model
    assert props["landstack:models"]["clcplus-backbone-west"] == "tempcnn-west:1"
    assert props["landstack:models"]["clcplus-backbone-east"] == "tempcnn:1"
    index, prof = _read(out["assets"]["units"])
    cols = np.arange(index.shape[2]) * 10 + prof["transform"].c + 5  # pixel centres
    assert np.all(index[0][:, cols < xm] == 1) and np.all(index[0][:, cols > xm] == 2)
    score, _ = _read(out["assets"]["data-score"])
    valid = score[0] > 0
    west, _ = _read(out["assets"]["clcplus-backbone-west"])
    east, _ = _read(out["assets"]["clcplus-backbone-east"])
    has_w, has_e = west[0] != PROB_NODATA, east[0] != PROB_NODATA
    # each unit over its own area and 100 m (10 px) beyond, nothing further
    reach_w = valid & (cols[None, :] < xm + 100)
    reach_e = valid & (cols[None, :] > xm - 100)
    assert np.array_equal(has_w, reach_w) and np.array_equal(has_e, reach_e)
    assert (has_w & has_e).any()  # the overlap for blending
    imd_w, _ = _read(out["assets"]["hrl-imperviousness-west"])
    assert np.array_equal(np.isfinite(imd_w[0]), reach_w)
