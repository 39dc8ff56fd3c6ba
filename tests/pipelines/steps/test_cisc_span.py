"""A CISC 90 km tile spanning two EEA 100 km cells is assembled once, from the roll-out tiles of both.

CISC tile 90kmE47N33 covers x 4,230-4,320 km, y 2,970-3,060 km: it straddles the cells E42N30 and
E43N30 (border x = 4,300 km). One small roll-out tile on each side of that border predicts a single
CISC class (impervious west, vegetation east); assembling either cell, in either order, must give
the one CISC item holding both parts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from landstack.catalog.items import check_item
from landstack.pipelines.products.assemble import tile_keys
from landstack.pipelines.steps import run_step
from landstack.storage import ObjectStore

from ._predictions import CISC_CLASSES, RAS_CLASSES, constant_probabilities, encode, grid, write_prediction

YEAR = 2023
BORDER = 4_300_000.0  # E42 | E43
TOP = 3_010_600.0
CISC_TILE = "90kmE47N33"
WEST, EAST = "E42N30-25K-r3c3", "E43N30-25K-r3c0"


def _one_class(code: int, shape: tuple[int, int]) -> np.ndarray:
    p = np.zeros((4, *shape), np.float32)
    p[code] = 1.0
    return encode(p, np.ones(shape, bool))


def _postprocessed(store: ObjectStore) -> None:
    for tile, left, code in ((WEST, BORDER - 600, 1), (EAST, BORDER, 2)):
        g = grid(left, TOP, 60, 60)
        url = write_prediction(
            store, tile, g, YEAR, {"cisc": (_one_class(code, g.shape), list(CISC_CLASSES))}
        )
        run_step("postprocess", {"prediction": url, "families": ["cisc"]}, store=store)


def _assemble(store: ObjectStore, cell: str) -> list[str]:
    out = run_step("assemble", {"product_tile": cell, "year": YEAR, "families": ["cisc"]}, store=store)
    return list(out["items"])


def _item(store: ObjectStore, collection: str) -> dict[str, Any]:
    return dict(store.read_json(tile_keys(collection, f"{collection}-{CISC_TILE}-{YEAR}")["item"]))


@pytest.mark.parametrize("order", [("E42N30", "E43N30"), ("E43N30", "E42N30")])
def test_cisc_tile_spanning_two_cells_holds_both(tmp_path: Path, order: tuple[str, str]) -> None:
    store = ObjectStore(tmp_path.as_uri())
    _postprocessed(store)
    items = [_assemble(store, cell) for cell in order]
    cisc_urls = [u for urls in items for u in urls if u.endswith(f"/cisc-classes-{CISC_TILE}-{YEAR}.json")]
    assert len(cisc_urls) == 1, f"the CISC tile must be written by exactly one cell, got {cisc_urls}"

    item = _item(store, "cisc-classes")
    check_item(item)
    assert sorted(item["properties"]["landstack:inputs"]) == sorted(
        f"landstack-intermediates-{t}-{YEAR}" for t in (WEST, EAST)
    )
    with rasterio.open(item["assets"]["data"]["href"]) as ds:
        classes = ds.read(1)
        left, bottom, right, top = ds.bounds
        res = ds.res[0]
    # both roll-out tiles' parts, on the CISC grid's 30 m pixels
    assert res == 30.0 and left % 30 == 0 and right % 30 == 0
    assert left <= BORDER - 600 and right >= BORDER + 600 and top >= TOP and bottom <= TOP - 600
    col = round((BORDER - left) / 30)  # the 30 m column holding the border (straddles both tiles)
    rows = slice(round((top - TOP) / 30) + 1, round((top - TOP) / 30) + 19)
    assert (classes[rows, : col - 1][:, -18:] == 1).all()  # west: impervious
    assert (classes[rows, col + 1 : col + 19] == 2).all()  # east: vegetation
    with rasterio.open(_item(store, "cisc-valid-mask")["assets"]["data"]["href"]) as ds:
        valid = ds.read(1)
    assert (valid[rows, col - 18 : col - 1] == 1).all() and (valid[rows, col + 1 : col + 19] == 1).all()
    # the 30 m column across the border: 1 of its 10 m columns west (3 px: too few, nodata), 2 east
    # (6 px: valid, vegetation); the mask agrees with the class whichever tile comes first
    assert (classes[rows, col] == 2).all() and (valid[rows, col] == 1).all()


def test_cisc_tile_is_written_once(tmp_path: Path) -> None:
    """The cell that does not own the shared tile writes nothing of it; the owner's copy stays."""
    store = ObjectStore(tmp_path.as_uri())
    _postprocessed(store)
    _assemble(store, "E42N30")
    folder = tile_keys("cisc-classes", f"cisc-classes-{CISC_TILE}-{YEAR}")["item"].rsplit("/", 1)[0]
    files = store.list(folder + "/")
    assert len(files) == 4  # item, COG, attribute table, quicklook
    stamps = {k: Path(store.path(k)).stat().st_mtime_ns for k in files}
    _assemble(store, "E43N30")
    assert {k: Path(store.path(k)).stat().st_mtime_ns for k in files} == stamps


def test_a_cell_without_cisc_layers_does_not_own_the_tile(tmp_path: Path) -> None:
    """The western tile was post-processed without CISC: the eastern cell makes the shared tile alone."""
    store = ObjectStore(tmp_path.as_uri())
    for tile, left, families in ((WEST, BORDER - 600, ["clcplus-backbone"]), (EAST, BORDER, ["cisc"])):
        g = grid(left, TOP, 60, 60)
        assets = {
            "cisc": (_one_class(2, g.shape), list(CISC_CLASSES)),
            "clcplus-backbone": (
                encode(constant_probabilities({1: 1.0}, g.shape), np.ones(g.shape, bool)),
                list(RAS_CLASSES),
            ),
        }
        url = write_prediction(store, tile, g, YEAR, assets)
        run_step("postprocess", {"prediction": url, "families": families}, store=store)
    assert _assemble(store, "E42N30") == []
    urls = _assemble(store, "E43N30")
    item = _item(store, "cisc-classes")
    assert len(urls) == 2 and any(u.endswith(f"/{item['id']}.json") for u in urls)
    assert item["properties"]["landstack:inputs"] == [f"landstack-intermediates-{EAST}-{YEAR}"]
