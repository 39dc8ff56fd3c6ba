"""Tiles, previews and WMTS of product items, collections and searches, drawn in the product's colours."""

from __future__ import annotations

import io
from typing import Any

import httpx
import morecantile
import numpy as np
import pytest
from PIL import Image

from landstack.catalog import get_layer
from landstack.tiler.symbology import layer_colormap

pytestmark = pytest.mark.integration

TMS = morecantile.tms.get("WebMercatorQuad")
LC, IMD = "clcplus-backbone-ras", "hrl-imperviousness-imd"


def _centre(item: dict[str, Any]) -> tuple[float, float]:
    w, s, e, n = item["bbox"]
    return (w + e) / 2, (s + n) / 2


def _rgba(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGBA"))


def _colours(img: np.ndarray) -> set[tuple[int, int, int]]:
    opaque = img[img[..., 3] == 255][:, :3]
    return {tuple(int(v) for v in px) for px in np.unique(opaque, axis=0)}


def _class_colours(cid: str) -> set[tuple[int, int, int]]:
    _, layer = get_layer(cid)
    return {tuple(int(c.color[i : i + 2], 16) for i in (1, 3, 5)) for c in layer.classes if not c.nodata}


def _tile_url(template: str, lon: float, lat: float, z: int = 14) -> str:
    t = TMS.tile(lon, lat, z)
    return template.replace("{z}", str(t.z)).replace("{x}", str(t.x)).replace("{y}", str(t.y))


def _item_links(stack: Any, item: dict[str, Any]) -> dict[str, str]:
    body = httpx.get(f"{stack.api}/collections/{item['collection']}/items/{item['id']}").json()
    return {lk["rel"]: lk["href"] for lk in body["links"]}


def test_item_xyz_link_gives_tiles_in_the_class_colours(stack: Any) -> None:
    item = next(i for i in stack.items if i["collection"] == LC)
    links = _item_links(stack, item)
    assert links["xyz"].startswith(stack.tiler) and "{z}/{x}/{y}" in links["xyz"]
    r = httpx.get(_tile_url(links["xyz"], *_centre(item)), timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    img = _rgba(r.content)
    found = _colours(img)
    assert len(found & _class_colours(LC)) >= 5, found
    # nearest resampling of a palette: every opaque pixel is a class colour
    assert found <= _class_colours(LC)


def test_item_wmts_and_preview(stack: Any) -> None:
    item = next(i for i in stack.items if i["collection"] == LC)
    links = _item_links(stack, item)
    r = httpx.get(links["wmts"], timeout=60)
    assert r.status_code == 200 and b"<Capabilities" in r.content and b"WebMercatorQuad" in r.content
    base = f"{stack.tiler}/collections/{LC}/items/{item['id']}"
    r = httpx.get(f"{base}/preview.png", params={"assets": "data", "max_size": 128}, timeout=60)
    assert r.status_code == 200, r.text
    assert _colours(_rgba(r.content)) & _class_colours(LC)


def test_collection_mosaic_per_year_and_its_link(stack: Any) -> None:
    coll = httpx.get(f"{stack.api}/collections/{LC}").json()
    rels = {lk["rel"]: lk for lk in coll["links"]}
    assert rels["xyz"]["href"].startswith(f"{stack.tiler}/collections/{LC}/tiles/WebMercatorQuad/")
    assert rels["preview"]["href"].startswith(f"{stack.tiler}/map")
    items = [i for i in stack.items if i["collection"] == LC]
    w = min(i["bbox"][0] for i in items)
    e = max(i["bbox"][2] for i in items)
    s = min(i["bbox"][1] for i in items)
    n = max(i["bbox"][3] for i in items)
    imgs = {}
    for year in (2018, 2021):
        url = _tile_url(rels["xyz"]["href"], (w + e) / 2, (s + n) / 2, z=13)
        params = {"assets": "data", "datetime": f"{year}-01-01T00:00:00Z/{year}-12-31T23:59:59Z"}
        r = httpx.get(url, params=params, timeout=60)
        assert r.status_code == 200, r.text
        imgs[year] = _rgba(r.content)
        assert _colours(imgs[year]) <= _class_colours(LC)
    sealed = (255, 1, 0)
    share = {
        y: np.mean(np.all(img[..., :3] == sealed, axis=-1) & (img[..., 3] == 255)) for y, img in imgs.items()
    }
    assert share[2021] > share[2018]  # the later year has newly sealed blocks


def test_search_mosaic_of_a_continuous_layer_uses_its_ramp(stack: Any) -> None:
    body = {"collections": [IMD], "datetime": "2021-01-01T00:00:00Z/2021-12-31T23:59:59Z"}
    r = httpx.post(f"{stack.tiler}/searches/register", json=body, timeout=60)
    assert r.status_code == 200, r.text
    search_id = r.json()["id"]
    item = next(i for i in stack.items if i["collection"] == IMD)
    url = _tile_url(
        f"{stack.tiler}/searches/{search_id}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.png", *_centre(item)
    )
    r = httpx.get(url, params={"assets": "data", "collection": IMD}, timeout=60)
    assert r.status_code == 200, r.text
    palette = {tuple(v[:3]) for v in layer_colormap(IMD).values() if v[3] == 255}
    found = _colours(_rgba(r.content))
    assert len(found) > 20 and found <= palette


def test_an_explicit_colormap_wins(stack: Any) -> None:
    item = next(i for i in stack.items if i["collection"] == IMD)
    base = f"{stack.tiler}/collections/{IMD}/items/{item['id']}"
    r = httpx.get(
        f"{base}/preview.png", params={"assets": "data", "colormap_name": "greys", "max_size": 64}, timeout=60
    )
    assert r.status_code == 200, r.text
    img = _rgba(r.content)
    opaque = img[img[..., 3] == 255][:, :3]
    assert np.all(opaque[:, 0] == opaque[:, 1]) and np.all(opaque[:, 1] == opaque[:, 2])
