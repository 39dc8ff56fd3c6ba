"""The `postprocess` step's work: a prediction item in, the roll-out tile's final layers out.

Reads the prediction COGs of one tile, runs each family's production order (see
:mod:`landstack.pipelines.products`) and writes the results to ``intermediates/<year>/<tile>/``:
the layers on the catalogue's specs (RAS, RASCL, RASDL, RASPL, IMD, sealing mask, change, CISC
classes and valid mask) plus what later steps need (the CLCplus input probabilities for next
year's calibration; S, NRES and greenness on the 10 m EPSG:3035 tile, reprojected at assembly).
The item is written last, so it never names a missing file.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS

from landstack.catalog.grid import Tile, TileGrid
from landstack.catalog.items import (
    Asset,
    Input,
    build_item,
    collection_href_for,
    file_info,
    item_doc,
    reference_period,
)
from landstack.catalog.stac import COG_MEDIA_TYPE
from landstack.pipelines.errors import BadInputError
from landstack.pipelines.products import cisc as cisc_mod
from landstack.pipelines.products import clcplus, codes, emc_built, hrl
from landstack.pipelines.products.raster import Grid
from landstack.storage import ObjectStore
from landstack.storage.errors import StoreError
from landstack.storage.layout import INTERMEDIATES

if TYPE_CHECKING:
    from landstack.pipelines.steps.products import PostprocessInput, PostprocessParameters

log = logging.getLogger("landstack.steps")

COLLECTION = "landstack-intermediates"
SCORE_NODATA = 65535
PROBABILITIES = "clcplus-probabilities"  # the CLCplus input probabilities (next year's calibration)
# the spec layer behind each intermediate layer name
SPEC_LAYERS = {
    "ras": codes.CLCPLUS_RAS,
    "rascl": codes.CLCPLUS_RASCL,
    "rasdl": codes.CLCPLUS_RASDL,
    "raspl": codes.CLCPLUS_RASPL,
    "imd": codes.HRL_IMD,
    "sealing-mask": codes.HRL_SEALING,
    "change": codes.HRL_CHANGE,
    "cisc-classes": codes.CISC_CLASSES,
    "cisc-valid-mask": codes.CISC_VALID,
}
EMC_LAYERS = ("emc-s", "emc-nres", "emc-greenness")
FAMILY_LAYERS = {
    "clcplus-backbone": ("ras", "rascl", "rasdl", "raspl"),
    "hrl-imperviousness": ("imd", "sealing-mask", "change"),
    "emc-built": EMC_LAYERS,
    "cisc": ("cisc-classes", "cisc-valid-mask"),
}


def intermediate_prefix(year: int, tile: str) -> str:
    """Key prefix of one roll-out tile's post-processed layers."""
    return f"{INTERMEDIATES}/{year}/{tile}"


def intermediate_item_key(year: int, tile: str) -> str:
    """Key of one roll-out tile's intermediates item."""
    return f"{intermediate_prefix(year, tile)}/item.json"


def item_grid(doc: dict[str, Any]) -> TileGrid:
    """The grid an item's projection fields describe."""
    props = doc.get("properties", {})
    try:
        t = props["proj:transform"]
        return TileGrid(str(props["proj:code"]), Affine(*t[:6]), tuple(props["proj:shape"]))
    except (KeyError, TypeError) as e:
        raise BadInputError(
            f"item {doc.get('id')!r} lacks projection fields (proj:code, proj:shape, proj:transform): {e}; "
            "give an item written by the predict or postprocess step"
        ) from e


# --- reading ---------------------------------------------------------------------------------------


class _Reader:
    """Reads assets of store items into arrays (through a local copy: the store may be s3://)."""

    def __init__(self, store: ObjectStore, work: Path) -> None:
        self.store, self.work, self._n = store, work, 0

    def read(self, href: str, what: str) -> tuple[np.ndarray, list[str]]:
        try:
            key = self.store.key_of(href)
            self._n += 1
            local = self.store.get_file(key, self.work / f"in-{self._n}.tif")
        except StoreError as e:
            raise BadInputError(f"{what}: cannot read {href}: {e}; run the step that writes it first") from e
        with rasterio.open(local) as ds:
            data = ds.read()
            names = [d or f"band {i + 1}" for i, d in enumerate(ds.descriptions)]
        local.unlink()
        return data, names


def _read_item(store: ObjectStore, url: str, field: str) -> dict[str, Any]:
    try:
        key = store.key_of(url)
        if not store.exists(key):
            raise StoreError(f"{url} does not exist")
        return dict(store.read_json(key))
    except (StoreError, ValueError) as e:
        raise BadInputError(
            f"field '{field}': no readable item at {url} ({e}); give the URL the predict step returned"
        ) from e


def _family_assets(doc: dict[str, Any], family: str) -> list[str]:
    """Asset keys of a family: `<family>` or one `<family>-<unit>` per production unit."""
    keys = sorted(k for k in doc.get("assets", {}) if k == family or k.startswith(family + "-"))
    return keys


# --- writing ---------------------------------------------------------------------------------------


class _Writer:
    """Writes the tile's layers as COGs to the store and remembers their assets."""

    def __init__(self, store: ObjectStore, prefix: str, work: Path, grid: TileGrid) -> None:
        self.store, self.prefix, self.work, self.grid = store, prefix, work, grid
        self.assets: dict[str, Asset] = {}
        self.urls: dict[str, str] = {}

    def layer(self, name: str, values: np.ndarray, grid: TileGrid) -> None:
        """A layer on its catalogue spec (codes checked, colour map, mode overviews)."""
        from landstack.pipelines.products import cog

        spec = codes.layer(SPEC_LAYERS[name])
        path = self.work / f"{name}.tif"
        cog.write_cog(path, spec, Grid(CRS.from_user_input(grid.crs), grid.transform, grid.shape), values)
        self._put(name, path, grid, {"landstack:layer": spec.id})

    def plain(self, name: str, values: np.ndarray, nodata: float, bands: list[str]) -> None:
        """A raster without a spec (probabilities, 10 m built-up values) on the tile grid."""
        path, staging = self.work / f"{name}.tif", self.work / f"{name}.staging.tif"
        profile = {
            "driver": "GTiff",
            "width": self.grid.width,
            "height": self.grid.height,
            "count": values.shape[0],
            "dtype": str(values.dtype),
            "crs": self.grid.crs,
            "transform": self.grid.transform,
            "nodata": nodata,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
        }
        with rasterio.open(staging, "w", **profile) as dst:
            dst.write(values)
            for i, b in enumerate(bands, start=1):
                dst.set_band_description(i, b)
        rasterio.shutil.copy(staging, path, driver="COG", COMPRESS="DEFLATE", PREDICTOR="YES", BLOCKSIZE=256)
        staging.unlink()
        self._put(name, path, self.grid, {})

    def _put(self, name: str, path: Path, grid: TileGrid, fields: dict[str, Any]) -> None:
        href = self.store.put_file(path, f"{self.prefix}/{name}.tif")
        path.unlink()
        self.urls[name] = href
        self.assets[name] = Asset(
            href=href,
            media_type=COG_MEDIA_TYPE,
            roles=["data"],
            title=name,
            fields=fields,
            file=file_info(href, self.store),
            grid=grid if grid != self.grid else None,
        )


# --- the families ----------------------------------------------------------------------------------


def ras_channels(encoded: np.ndarray, bands: list[str], what: str) -> np.ndarray:
    """Encoded probabilities with one channel per RAS class, in the catalogue's order.

    Bands are matched by their description (the class code); a class the model does not predict
    (e.g. one absent from its training samples) gets probability 0.
    """
    order = [int(c) for c in clcplus.class_codes()]
    try:
        found = [int(b) for b in bands]
    except ValueError:
        found = order if len(bands) == len(order) else []
    unknown = sorted(set(found) - set(order))
    if not found or unknown or len(set(found)) != len(found):
        raise BadInputError(
            f"{what}: band descriptions {bands} are not distinct RAS class codes {order}; "
            "predict with a land-cover model whose outputs are the catalogue's class codes"
        )
    out = np.zeros((len(order), *encoded.shape[1:]), np.uint8)
    for i, code in enumerate(found):
        out[order.index(code)] = encoded[i]
    out[:, (encoded == clcplus.PROB_NODATA).any(axis=0)] = clcplus.PROB_NODATA
    return out


def _calibration(p: PostprocessParameters) -> clcplus.CalibrationConfig:
    return clcplus.CalibrationConfig(
        standard=p.standard_percentile, leaf_type=p.leaf_type_percentile, conversion=p.conversion_percentile
    )


def _clcplus(
    encoded: list[np.ndarray],
    score: np.ndarray,
    prev: np.ndarray | None,
    grid: TileGrid,
    p: PostprocessParameters,
    s3: Any,
) -> tuple[np.ndarray, clcplus.ClcplusLayers, bool]:
    """(input probabilities, layers, whether they were filtered before) of one tile."""
    from landstack.pipelines.products import blending, clcplus_blocks, vectors

    filt: dict[str, Any] = {
        "win_size": p.win_size,
        "sigma_spatial": p.sigma_spatial,
        "sigma_color": p.sigma_color,
    }
    prefiltered = len(encoded) > 1
    if prefiltered:
        # several production units: each unit's valid footprint is its core; weights renormalise
        avail = [clcplus.decode_probabilities(e)[1] for e in encoded]
        weights = blending.unit_weights(avail, pixel_size=grid.resolution, available=avail)
        probs = blending.blend_encoded(encoded, weights, **filt)
    else:
        probs = encoded[0]
    inside = score != SCORE_NODATA
    crs = CRS.from_user_input(grid.crs)
    sea = vectors.load_mask(p.sea_mask, grid.shape, grid.transform, crs, s3) if p.sea_mask else None
    corrections = None
    if p.corrections:
        allowed = codes.thematic_codes(codes.layer(codes.CLCPLUS_RAS))
        corrections = vectors.load_corrections(
            p.corrections, grid.shape, grid.transform, crs, allowed, p.corrections_field, s3
        )
    shape = grid.shape
    out = clcplus.ClcplusLayers(
        np.empty(shape, np.uint8),
        np.empty(shape, np.uint8),
        np.empty(shape, np.uint16),
        np.empty(shape, np.uint8),
    )
    kwargs: dict[str, Any] = {
        "prev_encoded": prev,
        "production_area": inside,
        "sea": sea,
        "corrections": corrections,
        "block": p.block,
        "calibration": _calibration(p),
        **filt,
    }
    if prefiltered:
        layers_iter = _prefiltered_blocks(probs, score, kwargs)
    else:
        layers_iter = clcplus_blocks.clcplus_blocks(probs, score, **kwargs)
    for win, layers in layers_iter:
        sl = (slice(win.row_off, win.row_off + win.height), slice(win.col_off, win.col_off + win.width))
        out.ras[sl], out.rascl[sl], out.rasdl[sl], out.raspl[sl] = (
            layers.ras,
            layers.rascl,
            layers.rasdl,
            layers.raspl,
        )
        out.thresholds = layers.thresholds
    return probs, out, prefiltered


def _prefiltered_blocks(probs: np.ndarray, score: np.ndarray, kw: dict[str, Any]) -> Any:
    """The whole tile at once for blended (already filtered) probabilities."""
    from rasterio.windows import Window

    layers = clcplus.clcplus_layers(
        probs,
        score,
        prev_encoded=kw["prev_encoded"],
        production_area=kw["production_area"],
        sea=kw["sea"],
        corrections=kw["corrections"],
        calibration=kw["calibration"],
        filter_inputs=False,
    )
    yield Window(0, 0, probs.shape[2], probs.shape[1]), layers


def _regression(arrays: list[np.ndarray], names: list[list[str]], target: str) -> list[np.ndarray]:
    """The band called `target` (case-insensitive; else the first band) of each unit's raster."""
    out = []
    for arr, bands in zip(arrays, names, strict=True):
        lower = [b.lower() for b in bands]
        out.append(arr[lower.index(target.lower())] if target.lower() in lower else arr[0])
    return out


def cisc_grid(grid: TileGrid) -> tuple[TileGrid, tuple[int, int]]:
    """The 30 m grid (aligned to the CISC grid's 30 m multiples) covering a 10 m tile, and the
    (row, col) offset of the 10 m tile inside that grid's 10 m version."""
    spec = codes.layer(codes.CISC_CLASSES)
    g30 = TileGrid.from_bounds(grid.bounds, spec.grid.resolution, grid.crs)
    row = round((g30.transform.f - grid.transform.f) / grid.resolution)
    col = round((grid.transform.c - g30.transform.c) / grid.resolution)
    return g30, (row, col)


def _cisc(encoded: np.ndarray, score: np.ndarray, grid: TileGrid, min_valid: int) -> tuple[TileGrid, Any]:
    spec = codes.layer(codes.CISC_CLASSES)
    prob, valid = clcplus.decode_probabilities(encoded)
    order = np.array(codes.thematic_codes(spec), np.uint8)
    if prob.shape[0] != order.size:
        raise BadInputError(
            f"the prediction's cisc asset has {prob.shape[0]} bands; "
            f"CISC needs {order.size} class probabilities"
        )
    classes = np.where(valid, order[np.argmax(prob, axis=0)], spec.nodata).astype(np.uint8)
    g30, (r, c) = cisc_grid(grid)
    fine = np.full((g30.height * 3, g30.width * 3), spec.nodata, np.uint8)
    inside = np.zeros(fine.shape, bool)
    fine[r : r + grid.height, c : c + grid.width] = classes
    inside[r : r + grid.height, c : c + grid.width] = score != SCORE_NODATA
    inside30 = np.asarray(inside.reshape(g30.height, 3, g30.width, 3).any(axis=(1, 3)), bool)
    return g30, cisc_mod.cisc_layers(fine, inside30, min_valid=min_valid)


# --- the step --------------------------------------------------------------------------------------


def _previous(store: ObjectStore, year: int, tile: str) -> dict[str, Any] | None:
    key = intermediate_item_key(year, tile)
    if not year or not store.exists(key):
        if year:
            log.info("no post-processed layers of %d for tile %s: no interannual calibration", year, tile)
        return None
    return dict(store.read_json(key))


def run(store: ObjectStore, inp: PostprocessInput) -> tuple[str, dict[str, str]]:
    """Post-process one prediction item; returns (intermediates item URL, layer name -> URL)."""
    from landstack.pipelines.settings import get_settings

    doc = _read_item(store, inp.prediction, "prediction")
    props = doc.get("properties", {})
    tile_id, year = props.get("landstack:tile"), props.get("landstack:reference_year")
    if not tile_id or not year:
        raise BadInputError(
            f"field 'prediction': item {doc.get('id')!r} has no landstack:tile / landstack:reference_year; "
            "give a prediction item written by the predict step"
        )
    if inp.previous_year and inp.previous_year >= int(year):
        raise BadInputError(
            f"field 'previous_year': {inp.previous_year} is not before the prediction's year {year}; "
            "give an earlier reference year or 0"
        )
    missing = [f for f in inp.families if not _family_assets(doc, f)]
    if missing or "data-score" not in doc.get("assets", {}):
        raise BadInputError(
            f"field 'families': prediction item {doc.get('id')!r} has no assets for "
            f"{missing or ['data-score']} "
            f"(it has {sorted(doc.get('assets', {}))}); predict those families or drop them from families"
        )
    grid = item_grid(doc)
    assets = doc["assets"]
    p, s3 = inp.parameters, get_settings().s3()
    prev_doc = _previous(store, inp.previous_year, tile_id)
    prev_assets = (prev_doc or {}).get("assets", {})
    inputs = [Input(str(doc["id"]), inp.prediction)]
    if prev_doc:
        inputs.append(
            Input(str(prev_doc["id"]), store.href(intermediate_item_key(inp.previous_year, tile_id)))
        )
    properties: dict[str, Any] = {
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "landstack:tile": tile_id,
        "landstack:reference_year": int(year),
        "landstack:families": list(inp.families),
        "landstack:previous_year": inp.previous_year if prev_doc else 0,
        "landstack:parameters": p.model_dump(mode="json"),
    }
    with tempfile.TemporaryDirectory(prefix="landstack-postprocess-") as tmp:
        work = Path(tmp)
        reader = _Reader(store, work)
        out = _Writer(store, intermediate_prefix(int(year), tile_id), work, grid)
        score = reader.read(assets["data-score"]["href"], "data-score")[0][0]
        ras = None
        if "clcplus-backbone" in inp.families:
            encoded = [
                ras_channels(*reader.read(assets[k]["href"], k), k)
                for k in _family_assets(doc, "clcplus-backbone")
            ]
            prev = (
                reader.read(prev_assets[PROBABILITIES]["href"], PROBABILITIES)[0]
                if PROBABILITIES in prev_assets
                else None
            )
            probs, layers, prefiltered = _clcplus(encoded, score, prev, grid, p, s3)
            out.plain(PROBABILITIES, probs, clcplus.PROB_NODATA, [str(c) for c in clcplus.class_codes()])
            for name in FAMILY_LAYERS["clcplus-backbone"]:
                out.layer(name, getattr(layers, name), grid)
            ras = layers.ras
            properties["landstack:calibrated"] = prev is not None
            properties["landstack:change_thresholds"] = {
                f"{a}->{b}": t for (a, b), t in layers.thresholds.items()
            }
            properties["landstack:blended_units"] = len(encoded) if prefiltered else 1
        if "hrl-imperviousness" in inp.families:
            keys = _family_assets(doc, "hrl-imperviousness")
            read = [reader.read(assets[k]["href"], k) for k in keys]
            raw = emc_built.ensemble_mean(_regression([a for a, _ in read], [n for _, n in read], "imd"))
            previous = reader.read(prev_assets["imd"]["href"], "imd")[0][0] if "imd" in prev_assets else None
            h = hrl.hrl_layers(
                raw,
                ras,
                valid=score != SCORE_NODATA,
                previous_imd=previous,
                calibration_tolerance=p.imd_calibration_tolerance,
                change_tolerance=p.change_tolerance,
            )
            out.layer("imd", h.imd, grid)
            out.layer("sealing-mask", h.sealing_mask, grid)
            if h.change is not None:
                out.layer("change", h.change, grid)
        if "emc-built" in inp.families:
            keys = _family_assets(doc, "emc-built")
            read = [reader.read(assets[k]["href"], k) for k in keys]
            arrays, names = [a for a, _ in read], [n for _, n in read]
            med, med_names = reader.read(assets["medians"]["href"], "medians")
            lower = [n.lower() for n in med_names]
            ndvi = med[lower.index("ndvi_median")] if "ndvi_median" in lower else med[0]
            ndwi = med[lower.index("ndwi_median")] if "ndwi_median" in lower else med[-1]
            # the models predict m² of built-up surface per cell (the unit of their training truth)
            cell_m2 = float(grid.resolution) ** 2
            s_frac = [m / cell_m2 for m in _regression(arrays, names, "s")]
            nres_frac = [m / cell_m2 for m in _regression(arrays, names, "nres")]
            layers10 = emc_built.emc_layers_10m(s_frac, nres_frac, ndwi, ndvi, p.ndwi_threshold)
            for name in EMC_LAYERS:
                product = name.removeprefix("emc-")
                out.plain(name, layers10[product][None].astype(np.float32), float("nan"), [product.upper()])
        if "cisc" in inp.families:
            keys = _family_assets(doc, "cisc")
            # several production units: the first unit's classes (CISC has no blending rule)
            g30, c = _cisc(reader.read(assets[keys[0]]["href"], keys[0])[0], score, grid, p.cisc_min_valid)
            out.layer("cisc-classes", c.classes, g30)
            out.layer("cisc-valid-mask", c.valid_mask, g30)
        start, end = reference_period(int(year))
        item_id = f"{COLLECTION}-{tile_id}-{year}"
        item = build_item(
            item_id,
            assets=out.assets,
            tile=Tile(tile_id, grid),
            start=start,
            end=end,
            properties=properties,
            collection=COLLECTION,
            collection_href=collection_href_for(COLLECTION, item_id),
            inputs=inputs,
        )
        url = store.put_json(intermediate_item_key(int(year), tile_id), item_doc(item))
    return url, out.urls
