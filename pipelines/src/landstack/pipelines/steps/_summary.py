"""The `summary` step's work: what a run produced per family, and its accuracy against a truth.

Accuracy is measured on the post-processed roll-out tiles (the product tiles are mosaics of
exactly these pixels), with the truth rasters resampled onto each tile's grid by nearest neighbour:

- land cover: overall accuracy of RAS against the truth land cover (thematic pixels of both);
- imperviousness: mean absolute error of the final IMD against the truth density (percentage points);
- built-up: mean absolute error of S (m² per 10 m cell) against the truth's built-up area
  (`builtup-area`, band S);
- CISC: overall accuracy at 30 m against the truth's `impervious-classes` (or, without it, classes
  derived from the land cover and density: impervious where the density is at least 50 %, water,
  vegetation for land-cover classes 2-8, bare/other otherwise).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from rasterio import warp
from rasterio.crs import CRS

from landstack.catalog.products import get_layer, layer_ids
from landstack.pipelines.errors import BadInputError
from landstack.pipelines.products import codes
from landstack.pipelines.products.intermediates import FAMILY_LAYERS
from landstack.pipelines.steps._postprocess import item_grid
from landstack.storage import ObjectStore
from landstack.storage.layout import INTERMEDIATES, PRODUCTS

if TYPE_CHECKING:
    from landstack.catalog.grid import TileGrid
    from landstack.pipelines.steps.products import SummaryInput

log = logging.getLogger("landstack.steps")

_TRUTH_NODATA = 255


def _read_on(store: ObjectStore, url: str, grid: TileGrid, name: str) -> np.ndarray:
    """A truth raster resampled (nearest) onto `grid`; nodata where it has none."""
    out = np.full(grid.shape, _TRUTH_NODATA, np.uint8)
    try:
        with store.gdal_env(), rasterio.open(url) as src:
            warp.reproject(
                rasterio.band(src, 1),
                out,
                dst_transform=grid.transform,
                dst_crs=CRS.from_user_input(grid.crs),
                dst_nodata=_TRUTH_NODATA,
                resampling=warp.Resampling.nearest,
            )
    except rasterio.errors.RasterioError as e:
        raise BadInputError(
            f"field 'truth.{name}': cannot read {url}: {e}; give the synthetic truth raster"
        ) from e
    return out


def _read(store: ObjectStore, href: str) -> np.ndarray:
    with store.gdal_env(), rasterio.open(href) as src:
        return np.asarray(src.read(1))


class _Score:
    """Running totals of one accuracy figure over the tiles."""

    def __init__(self) -> None:
        self.hits, self.total, self.abs_err = 0, 0, 0.0

    def agree(self, pred: np.ndarray, ref: np.ndarray, ok: np.ndarray) -> None:
        self.hits += int((pred[ok] == ref[ok]).sum())
        self.total += int(ok.sum())

    def error(self, pred: np.ndarray, ref: np.ndarray, ok: np.ndarray) -> None:
        self.abs_err += float(np.abs(pred[ok].astype(np.float64) - ref[ok].astype(np.float64)).sum())
        self.total += int(ok.sum())

    def oa(self) -> float | None:
        return round(self.hits / self.total, 4) if self.total else None

    def mae(self) -> float | None:
        return round(self.abs_err / self.total, 3) if self.total else None


def _cisc_truth(landcover: np.ndarray, imperviousness: np.ndarray) -> np.ndarray:
    spec = codes.layer(codes.CISC_CLASSES)
    c = {n: codes.code(spec, n) for n in ("Bare land or other", "Impervious surface", "Vegetation", "Water")}
    out = np.full(landcover.shape, c["Bare land or other"], np.uint8)
    out[(landcover >= 2) & (landcover <= 8)] = c["Vegetation"]
    out[landcover == 10] = c["Water"]
    out[(imperviousness >= 50) & (imperviousness <= 100)] = c["Impervious surface"]
    out[landcover == _TRUTH_NODATA] = spec.nodata
    return out


def _accuracy(
    store: ObjectStore, docs: list[dict[str, Any]], truth: dict[str, str]
) -> dict[str, dict[str, Any]]:
    scores = {f: _Score() for f in FAMILY_LAYERS}
    ras_spec = codes.layer(codes.CLCPLUS_RAS)
    thematic = codes.thematic_codes(ras_spec)
    for doc in docs:
        assets, grid = doc["assets"], item_grid(doc)
        lc = _read_on(store, truth["landcover"], grid, "landcover") if "landcover" in truth else None
        imp = (
            _read_on(store, truth["imperviousness"], grid, "imperviousness")
            if "imperviousness" in truth
            else None
        )
        if lc is not None and "ras" in assets:
            ras = _read(store, assets["ras"]["href"])
            scores["clcplus-backbone"].agree(ras, lc, np.isin(ras, thematic) & np.isin(lc, thematic))
        if imp is not None and "imd" in assets:
            imd = _read(store, assets["imd"]["href"])
            scores["hrl-imperviousness"].error(imd, imp, (imd <= 100) & (imp <= 100))
        if "builtup-area" in truth and "emc-s" in assets:
            area = _read_on(store, truth["builtup-area"], grid, "builtup-area")
            s = _read(store, assets["emc-s"]["href"])
            scores["emc-built"].error(s, area, np.isfinite(s) & (area != _TRUTH_NODATA))
        has_classes = "impervious-classes" in truth or (lc is not None and imp is not None)
        if has_classes and "cisc-classes" in assets:
            from landstack.catalog.grid import TileGrid

            href = assets["cisc-classes"]["href"]
            with store.gdal_env(), rasterio.open(href) as src:
                g30 = TileGrid(grid.crs, src.transform, (src.height, src.width))
                pred = src.read(1)
            if "impervious-classes" in truth:
                ref = _read_on(store, truth["impervious-classes"], g30, "impervious-classes")
            else:
                ref = _cisc_truth(
                    _read_on(store, truth["landcover"], g30, "landcover"),
                    _read_on(store, truth["imperviousness"], g30, "imperviousness"),
                )
            nodata = codes.layer(codes.CISC_CLASSES).nodata
            scores["cisc"].agree(pred, ref, (pred != nodata) & (ref != nodata))
    return {
        "clcplus-backbone": {"overall_accuracy": scores["clcplus-backbone"].oa()},
        "hrl-imperviousness": {"imd_mae": scores["hrl-imperviousness"].mae()},
        "emc-built": {"builtup_mae": scores["emc-built"].mae()},
        "cisc": {"overall_accuracy": scores["cisc"].oa()},
    }


def _family_of(layer_id: str) -> str:
    product, _ = get_layer(layer_id)
    return product.id


def _published(published: Any) -> int | None:
    """Items a publish step output reports (one output or a list of them from a fan-out)."""
    if published is None:
        return None
    outputs = published if isinstance(published, list) else [published]
    total = 0
    for o in outputs:
        if isinstance(o, dict):
            for k in ("items_loaded", "items", "published", "count"):
                v = o.get(k)
                if isinstance(v, int):
                    total += v
                    break
                if isinstance(v, list):
                    total += len(v)
                    break
    return total


def run(store: ObjectStore, inp: SummaryInput) -> tuple[dict[str, dict[str, Any]], int | None]:
    """Per family: roll-out tiles, layers and items produced, quicklooks, and accuracy (with a truth)."""
    docs = [dict(store.read_json(k)) for k in store.list(f"{INTERMEDIATES}/{inp.year}/", suffix="item.json")]
    out: dict[str, dict[str, Any]] = {}
    accuracy = _accuracy(store, docs, inp.truth) if inp.truth else {}
    for family in inp.families:
        tiles = sum(1 for d in docs if any(n in d["assets"] for n in FAMILY_LAYERS[family]))
        items, layers, quicklooks = 0, [], []
        for layer_id in layer_ids():
            if _family_of(layer_id) != family:
                continue
            keys = [k for k in store.list(f"{PRODUCTS}/{layer_id}/", suffix=".json") if f"-{inp.year}/" in k]
            if keys:
                layers.append(layer_id)
                items += len(keys)
                quicklooks += [store.href(k.removesuffix(".json") + ".png") for k in keys]
        out[family] = {
            "tiles": tiles,
            "layers": len(layers),
            "items": items,
            "layer_ids": layers,
            "quicklooks": quicklooks,
            **accuracy.get(family, {}),
        }
    return out, _published(inp.published)
