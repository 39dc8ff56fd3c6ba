"""The product steps from JSON: postprocess, assemble and summary on a real (tiny-model) prediction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from landstack.catalog.grid import RolloutTile
from landstack.catalog.items import check_item
from landstack.pipelines.errors import BadInputError
from landstack.pipelines.products import codes
from landstack.pipelines.steps import run_step
from landstack.storage import ObjectStore

from ..conftest import REFERENCE_YEAR
from .conftest import snapshot

YEAR = REFERENCE_YEAR
CLIP = (16.2945, 48.1965, 16.3055, 48.2035)  # ~800 m x 800 m inside the archive's AOI


def _tiny_models(registry: str) -> None:
    """Tiny but real models of every family (one epoch on random data), registered."""
    from landstack.models.fitting import fit_patch_model, fit_tempcnn
    from landstack.models.patches import PatchSet
    from landstack.models.registry import register_model
    from landstack.models.tables import SampleTable
    from landstack.models.training import TrainConfig
    from landstack.pipelines.features import FeatureConfig, unet_features

    rng = np.random.default_rng(0)
    cfg = FeatureConfig()
    cfg_t = TrainConfig(epochs=1, batch_size=64, seed=0, threads=1)
    table = SampleTable(
        x=rng.normal(0.2, 0.1, (200, len(cfg.names), 54)).astype(np.float32),
        labels=rng.integers(1, 12, 200),
        features=cfg.names,
        time_steps=54,
    )
    t = fit_tempcnn(table, cfg_t, hyperparameters={"filters": 8, "dense": 16}, name="tempcnn", version="1")
    register_model(registry, t.model, t.metadata)
    probe = {b: np.ones((3, 1), np.uint16) for b in ("B02", "B03", "B04", "B08", "B11", "B12")}
    _, names = unet_features(probe, np.full((3, 1), 4, np.uint8), np.zeros(3), np.arange(3.0), cfg)
    x = rng.normal(0, 1, (8, len(names), 32, 32)).astype(np.float32)
    imd = PatchSet(x, rng.uniform(0, 100, (8, 1, 32, 32)).astype(np.float32), names, ["imd"])
    u = fit_patch_model(imd, cfg_t, "UNet", {"width": 8, "depth": 2}, name="unet-imd", version="1")
    register_model(registry, u.model, u.metadata)
    built = PatchSet(x, rng.uniform(0, 1, (8, 2, 32, 32)).astype(np.float32), names, ["S", "NRES"])
    b = fit_patch_model(built, cfg_t, "UNet", {"width": 8, "depth": 2}, name="unet-built", version="1")
    register_model(registry, b.model, b.metadata)
    cls = PatchSet(x, rng.integers(0, 4, (8, 32, 32)).astype(np.uint8), names, ["class"])
    c = fit_patch_model(cls, cfg_t, "ImperviousCNN", {"width": 8}, name="impervious", version="1")
    register_model(registry, c.model, c.metadata)


def _tile_code() -> str:
    from landstack.catalog.grid import Aoi

    x0, y0, x1, y1 = Aoi(CLIP, "EPSG:4326").to_crs("EPSG:3035")
    return RolloutTile.at((x0 + x1) / 2, (y0 + y1) / 2).code


@pytest.fixture(scope="module")
def predicted(
    s2_archive: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ObjectStore, dict[str, Any]]:
    """A store holding a prediction item of every family (the predict step on the synthetic archive)."""
    archive_store, result, _ = s2_archive
    store = ObjectStore(tmp_path_factory.mktemp("products").as_uri())
    registry = ObjectStore(tmp_path_factory.mktemp("registry").as_uri()).url
    _tiny_models(registry)
    out = run_step(
        "predict",
        {
            "tile": _tile_code(),
            "aoi": list(CLIP),
            "year": YEAR,
            "source": archive_store.href(result.collection_key),
            "registry_url": registry,
            "window": 64,
        },
        store=store,
    )
    return store, out


@pytest.fixture(scope="module")
def postprocessed(predicted: tuple[ObjectStore, dict[str, Any]]) -> dict[str, Any]:
    store, pred = predicted
    return run_step("postprocess", {"prediction": pred["item"]}, store=store)


def _read(url: str) -> tuple[np.ndarray, Any]:
    with rasterio.open(url) as ds:
        return ds.read(1), ds.profile


def test_postprocess_writes_every_family(
    predicted: tuple[ObjectStore, dict[str, Any]], postprocessed: dict[str, Any], schemas: Any
) -> None:
    store, _ = predicted
    layers = postprocessed["layers"]
    expected = {"ras", "rascl", "rasdl", "raspl", "imd", "sealing-mask", "cisc-classes", "cisc-valid-mask"}
    assert expected | {"emc-s", "emc-nres", "emc-greenness", "clcplus-probabilities"} <= set(layers)
    assert "change" not in layers  # no previous year
    for name in expected:
        values, profile = _read(layers[name])
        spec = codes.layer(
            {
                "ras": codes.CLCPLUS_RAS,
                "rascl": codes.CLCPLUS_RASCL,
                "rasdl": codes.CLCPLUS_RASDL,
                "raspl": codes.CLCPLUS_RASPL,
                "imd": codes.HRL_IMD,
                "sealing-mask": codes.HRL_SEALING,
                "cisc-classes": codes.CISC_CLASSES,
                "cisc-valid-mask": codes.CISC_VALID,
            }[name]
        )
        codes.check_codes(spec, values)  # only declared codes
        assert profile["nodata"] == spec.nodata
        assert cog_validate(layers[name], quiet=True)[0]
    ras, _ = _read(layers["ras"])
    assert np.isin(ras, codes.thematic_codes(codes.layer(codes.CLCPLUS_RAS))).mean() > 0.9
    _, profile = _read(layers["cisc-classes"])
    assert profile["transform"].a == 30.0 and profile["transform"].c % 30 == 0
    # sealing mask logic: every RAS Sealed pixel is in the mask and has IMD >= 1
    mask, _ = _read(layers["sealing-mask"])
    imd, _ = _read(layers["imd"])
    sealed = ras == 1
    assert (mask[sealed] == 1).all() and (imd[sealed] >= 1).all()
    assert (imd[mask == 0] == 0).all()
    s, _ = _read(layers["emc-s"])
    assert np.nanmax(s) <= 100 and np.nanmin(s) >= 0
    doc = json.loads(Path(store.path(store.key_of(postprocessed["item"]))).read_text())
    assert doc["collection"] == "landstack-intermediates"
    assert doc["properties"]["landstack:inputs"] == [f"landstack-predictions-{_tile_code()}-{YEAR}"]
    check_item(doc)


def test_postprocess_is_idempotent(
    predicted: tuple[ObjectStore, dict[str, Any]], postprocessed: dict[str, Any]
) -> None:
    store, pred = predicted
    root = Path(store.path(""))
    before = snapshot(root / "intermediates")
    again = run_step("postprocess", {"prediction": pred["item"]}, store=store)
    assert again == postprocessed
    assert snapshot(root / "intermediates") == before


def test_calibration_against_previous_year(
    predicted: tuple[ObjectStore, dict[str, Any]], postprocessed: dict[str, Any]
) -> None:
    """The same tile as a later year, calibrated against this one: no change survives, HRL change appears."""
    store, pred = predicted
    key = store.key_of(pred["item"])
    doc = store.read_json(key)
    doc["properties"]["landstack:reference_year"] = YEAR + 1
    doc["id"] = doc["id"].replace(str(YEAR), str(YEAR + 1))
    later = store.put_json(key.replace(f"/{YEAR}/", f"/{YEAR + 1}/"), doc)
    out = run_step("postprocess", {"prediction": later, "previous_year": YEAR}, store=store)
    assert "change" in out["layers"]
    change, _ = _read(out["layers"]["change"])
    codes.check_codes(codes.layer(codes.HRL_CHANGE), change)
    first, _ = _read(postprocessed["layers"]["ras"])
    second, _ = _read(out["layers"]["ras"])
    np.testing.assert_array_equal(first, second)  # identical probabilities: nothing changes
    item = store.read_json(store.key_of(out["item"]))
    assert item["properties"]["landstack:calibrated"] is True
    assert item["properties"]["landstack:previous_year"] == YEAR


def test_assemble_and_summary(
    predicted: tuple[ObjectStore, dict[str, Any]], postprocessed: dict[str, Any]
) -> None:
    store, _ = predicted
    cell = _tile_code().split("-")[0]
    out = run_step("assemble", {"product_tile": cell, "year": YEAR}, store=store)
    collections = {store.read_json(store.key_of(u))["collection"] for u in out["items"]}
    assert {
        "clcplus-backbone-ras",
        "clcplus-backbone-rascl",
        "clcplus-backbone-rasdl",
        "clcplus-backbone-raspl",
    } <= collections
    assert {
        "hrl-imperviousness-imd",
        "hrl-imperviousness-sealing-mask",
        "cisc-classes",
        "cisc-valid-mask",
    } <= collections
    assert {
        f"emc-built-{p}-{r}"
        for p in ("s", "nres", "greenness")
        for r in ("10m", "100m", "1km", "3ss", "30ss")
    } <= collections
    ras_item = next(store.read_json(store.key_of(u)) for u in out["items"] if "/clcplus-backbone-ras/" in u)
    assert {"attribute_table", "thumbnail"} <= set(ras_item["assets"])
    check_item(ras_item)
    # the mosaic holds the post-processed pixels unchanged
    ras_key = next(k for k, a in ras_item["assets"].items() if a.get("roles") and "data" in a["roles"])
    with rasterio.open(ras_item["assets"][ras_key]["href"]) as ds:
        mosaic = ds.read(1)
    tile, _ = _read(postprocessed["layers"]["ras"])
    assert mosaic.shape == tile.shape and (mosaic == tile).all()
    # idempotent: the second run writes nothing
    root = Path(store.path(""))
    before = snapshot(root / "products")
    assert run_step("assemble", {"product_tile": cell, "year": YEAR}, store=store) == out
    assert snapshot(root / "products") == before

    summary = run_step("summary", {"run": "test", "year": YEAR}, store=store)
    fam = summary["families"]
    assert fam["clcplus-backbone"]["tiles"] == 1 and fam["clcplus-backbone"]["layers"] == 4
    assert fam["emc-built"]["layers"] == 15 and fam["cisc"]["layers"] == 2
    assert all(q.endswith(".png") for q in fam["hrl-imperviousness"]["quicklooks"])


@pytest.mark.parametrize(
    ("name", "data", "field"),
    [
        ("postprocess", {"prediction": "file:///nowhere/item.json"}, "prediction"),
        ("postprocess", {"prediction": "x", "families": ["corine"]}, "families"),
        ("postprocess", {"prediction": "x", "parameters": {"win_size": 0}}, "parameters.win_size"),
        ("assemble", {"product_tile": "Z9", "year": YEAR}, "product_tile"),
        ("assemble", {"product_tile": "E1N1", "year": YEAR}, "product_tile"),
        ("summary", {"run": "r", "year": YEAR, "truth": {"forest": "x"}}, "truth"),
    ],
)
def test_bad_input_names_the_field(tmp_path: Path, name: str, data: dict[str, Any], field: str) -> None:
    store = ObjectStore(tmp_path.as_uri())
    with pytest.raises(BadInputError, match=f"field '{field}'"):
        run_step(name, data, store=store)
    assert not (tmp_path / "products").exists() and not (tmp_path / "intermediates").exists()


def test_land_cover_bands_are_matched_by_class_code() -> None:
    from landstack.pipelines.products.clcplus_tile import ras_channels

    enc = np.array([[[250, 255]], [[0, 255]]], np.uint8)  # classes 10 and 1, second pixel no data
    out = ras_channels(enc, ["10", "1"], "clcplus-backbone")
    order = codes.thematic_codes(codes.layer(codes.CLCPLUS_RAS))
    assert out.shape == (len(order), 1, 2)
    assert out[order.index(10), 0, 0] == 250 and out[order.index(1), 0, 0] == 0
    assert out[:, 0, 0].sum() == 250 and (out[:, 0, 1] == 255).all()
    with pytest.raises(BadInputError, match="not distinct RAS class codes"):
        ras_channels(enc, ["10", "12"], "clcplus-backbone")
