"""The web map in a real headless Chromium: it loads, a product layer's tiles arrive, the map shows
the layer's colours, a click tells the class and links the COG, layers and years switch.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LC, IMD = "clcplus-backbone-ras", "hrl-imperviousness-imd"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _class_colours(cid: str) -> dict[tuple[int, int, int], str]:
    from landstack.catalog import get_layer

    _, layer = get_layer(cid)
    return {
        tuple(int(c.color[i : i + 2], 16) for i in (1, 3, 5)): c.name for c in layer.classes if not c.nodata
    }


def test_the_web_map_draws_a_product_and_answers_clicks(stack: Any, browser: Any) -> None:
    libs = Path(__file__).resolve().parents[3] / ".tools" / "web" / "node_modules" / "leaflet"
    if not libs.is_dir():
        pytest.skip(f"{libs} is absent: npm install --prefix .tools/web leaflet@1.9.4")
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    tiles: list[tuple[str, int, str]] = []
    errors: list[str] = []
    page.on(
        "response",
        lambda r: (
            tiles.append((r.url, r.status, r.headers.get("content-type", "")))
            if "/tiles/WebMercatorQuad/" in r.url
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{stack.tiler}/map?collection={LC}&year=2018", wait_until="load")
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        page.wait_for_load_state("networkidle", timeout=60_000)
        ok = [t for t in tiles if t[1] == 200 and t[2] == "image/png" and f"/collections/{LC}/" in t[0]]
        assert ok, tiles
        assert all("datetime=2018-01-01" in t[0] for t in ok)

        # the legend lists the classes with their names
        legend = page.inner_text("#legend")
        assert "Sealed" in legend and "Water" in legend

        # the screenshot of the map has the classes' colours
        shot = np.asarray(Image.open(io.BytesIO(page.locator("#map").screenshot())).convert("RGB"))
        colours = _class_colours(LC)
        present = {c for c in colours if np.all(shot == np.array(c), axis=-1).sum() > 50}
        assert len(present) >= 5, present

        # a click in the middle of the first tile answers the class and links the COG
        box = page.locator("#map").bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.4)
        page.wait_for_function(
            "(() => { const a = document.getElementById('download');"
            " return !a.hidden && a.textContent.includes('COG'); })()",
            timeout=30_000,
        )
        info = page.inner_text("#info")
        assert any(name in info for name in colours.values()), info
        href = page.get_attribute("#download", "href")
        assert href and href.startswith(f"{stack.api}/store/products/{LC}/") and href.endswith(".tif")
        head = httpx.get(href, headers={"Range": "bytes=0-3"})
        assert head.status_code == 206 and head.content[:2] == b"II"

        # switch to the imperviousness layer and another year: its tiles arrive
        def imd_tile(year: int) -> Any:
            # tiles beside the data are 204: wait for one with pixels
            return lambda r: (
                f"/collections/{IMD}/tiles/" in r.url
                and f"datetime={year}-01-01" in r.url
                and r.status == 200
            )

        with page.expect_response(imd_tile(2018), timeout=60_000) as first:
            page.select_option("#layer", IMD)
        assert first.value.status == 200
        assert "percent" in page.inner_text("#legend")
        with page.expect_response(imd_tile(2021), timeout=60_000) as second:
            page.select_option("#year", "2021")
        assert second.value.status == 200 and second.value.headers["content-type"] == "image/png"
        assert errors == []
    finally:
        page.close()
