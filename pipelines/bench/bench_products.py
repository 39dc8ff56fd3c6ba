"""Benchmark of the postprocess step's streaming path: seconds and peak RSS per family and tile size.

For each tile size a synthetic prediction item (11-class probabilities, data score, raw IMD, S/NRES,
NDVI/NDWI medians, CISC probabilities) and the previous reference year's intermediates are written
to a file:// store; then the step (`steps._postprocess.run`) post-processes one family per fresh
interpreter, so each peak RSS is that family's own:

- clcplus: calibration against the previous year (two passes: thresholds, layers), bilateral
  filter, sea buffer, outside area -> RAS, RASCL, RASDL, RASPL and the input probabilities, each
  written block by block and copied into a COG;
- hrl: IMD, sealing mask and change against the previous year's IMD;
- emc: S, NRES and greenness (median NDVI within 300 m of built-up) on the 10 m tile;
- cisc: the 30 m classes and valid mask.

Memory follows the block (`--block`, the step's default 1024 px), not the tile: compare the sizes.

    python pipelines/bench/bench_products.py [--sizes 1000 2000] [--block 1024]

`--emc-assembly` instead measures the assemble step's EMC-BUILT part on a covered area of each size:
synthetic 10 m S/NRES/greenness intermediates -> every EMC-BUILT layer (Mollweide 10 m/100 m/1 km,
WGS84 3"/30") staged block by block (`products.emc_blocks`, blocks of `--block` rounded down to
whole 1 km cells, as the step does) and written as COGs; `--emc-whole` adds the former whole-array
path (`emc_built.emc_products`) for comparison. Results go to bench-results/products-emc.json.

    python pipelines/bench/bench_products.py --emc-assembly [--emc-whole] --sizes 2000 4000

Writes bench-results/products.json and prints it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path("bench-results/products.json")
EMC_RESULTS = Path("bench-results/products-emc.json")
YEAR = 2023
TILE = "BENCH"
FAMILIES = {
    "clcplus": "clcplus-backbone",
    "hrl": "hrl-imperviousness",
    "emc": "emc-built",
    "cisc": "cisc",
}
_STRIP = 250  # rows generated at a time: the set-up never holds a whole tile of floats either


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _probabilities(rng: np.random.Generator, n: int, rows: int, cols: int) -> np.ndarray:
    """Encoded probabilities (uint8 0-250) of 50 px parcels with noisy, peaked values."""
    from landstack.pipelines.products.clcplus import encode_probabilities

    parcel = rng.integers(0, n, (rows // 50 + 1, cols // 50 + 1))
    cls = np.repeat(np.repeat(parcel, 50, 0), 50, 1)[:rows, :cols]
    logits = rng.normal(0, 1, (n, rows, cols)).astype(np.float32)
    np.put_along_axis(logits, cls[None], 3.0 + rng.normal(0, 1.5, (1, rows, cols)).astype(np.float32), 0)
    prob = np.exp(logits)
    prob /= prob.sum(axis=0)
    return encode_probabilities(prob, np.ones((rows, cols), bool))


def _strip(rng: np.random.Generator, rows: int, size: int) -> dict[str, np.ndarray]:
    score = rng.integers(0, 150, (1, rows, size)).astype(np.uint16)
    score[:, :, -size // 20 :] = 65535  # outside the production area
    base = (rng.uniform(0, 1, (rows, size)) ** 6).astype(np.float32)
    base[base < 0.3] = 0.0  # built-up clusters with gaps: the greenness domain has borders
    built = np.stack([base * 100, base * 30]).astype(np.float32)
    medians = np.stack([rng.uniform(0.0, 0.9, (rows, size)), rng.uniform(-0.5, 0.4, (rows, size))])
    return {
        "data-score": score,
        "clcplus-backbone": _probabilities(rng, 11, rows, size),
        "hrl-imperviousness": np.clip(rng.normal(25, 35, (1, rows, size)), 0, 100).astype(np.float32),
        "emc-built": built,
        "medians": medians.astype(np.float32),
        "cisc": _probabilities(rng, 4, rows, size),
    }


_BANDS = {
    "data-score": ["data_score"],
    "clcplus-backbone": [str(c) for c in range(1, 12)],
    "hrl-imperviousness": ["imd"],
    "emc-built": ["S", "NRES"],
    "medians": ["NDVI_median", "NDWI_median"],
    "cisc": ["0", "1", "2", "3"],
}


def _write_prediction(store: Any, work: Path, size: int, year: int, seed: int) -> str:
    """A prediction item of every family, written in strips of rows into tiled GeoTIFFs."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    from landstack.catalog.grid import Tile, TileGrid
    from landstack.pipelines.inference.predict import Prediction
    from landstack.pipelines.inference.publishing import prediction_item

    grid = TileGrid("EPSG:3035", Affine(10.0, 0, 4_800_000.0, 0, -10.0, 2_850_000.0), (size, size))
    rng = np.random.default_rng(seed)
    pred = Prediction()
    dsets = {}
    for key, bands in _BANDS.items():
        dtype = {"data-score": "uint16", "clcplus-backbone": "uint8", "cisc": "uint8"}.get(key, "float32")
        nodata = {"uint16": 65535, "uint8": 255, "float32": float("nan")}[dtype]
        path = work / f"{year}-{key}.tif"
        # PHOTOMETRIC: a 4-band uint8 raster would otherwise be taken for RGBA by the COG conversion
        dsets[key] = rasterio.open(
            path, "w", driver="GTiff", width=size, height=size, count=len(bands), dtype=dtype,
            nodata=nodata, crs=grid.crs, transform=grid.transform, tiled=True, blockxsize=256,
            blockysize=256, photometric="MINISBLACK",
        )  # fmt: skip
        pred.files[key], pred.bands[key] = path, bands
        if key not in ("data-score", "medians"):
            pred.models[key] = f"synthetic-{key}:1"
    for row0 in range(0, size, _STRIP):
        rows = min(_STRIP, size - row0)
        for key, values in _strip(rng, rows, size).items():
            dsets[key].write(values, window=Window(0, row0, size, rows))
    for key, ds in dsets.items():
        ds.descriptions = tuple(_BANDS[key])
        ds.close()
    url, _ = prediction_item(store, Tile(TILE, grid), year, pred, work)
    return url


def _setup(root: Path, size: int, block: int) -> dict[str, str]:
    """This year's prediction item and last year's intermediates (CLCplus probabilities, IMD)."""
    from landstack.pipelines.steps import _postprocess
    from landstack.pipelines.steps.products import PostprocessInput, PostprocessParameters
    from landstack.storage import ObjectStore

    store = ObjectStore(root.as_uri())
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        last = _write_prediction(store, Path(tmp), size, YEAR - 1, seed=1)
        params = PostprocessParameters(block=block)
        families = ["clcplus-backbone", "hrl-imperviousness"]
        _postprocess.run(store, PostprocessInput(prediction=last, families=families, parameters=params))
        return {"prediction": _write_prediction(store, Path(tmp), size, YEAR, seed=2)}


def _measure(root: Path, prediction: str, family: str, block: int, size: int) -> dict[str, Any]:
    """Run the step for one family (in this fresh interpreter) and report seconds and peak RSS."""
    from landstack.pipelines.steps import _postprocess
    from landstack.pipelines.steps.products import PostprocessInput, PostprocessParameters
    from landstack.storage import ObjectStore

    store = ObjectStore(root.as_uri())
    inp = PostprocessInput(
        prediction=prediction,
        previous_year=YEAR - 1 if family in ("clcplus", "hrl") else 0,
        families=[FAMILIES[family]],
        parameters=PostprocessParameters(block=block),
    )
    baseline = _peak_rss_mb()  # interpreter + numpy, rasterio/GDAL, the step's imports
    t0 = time.perf_counter()
    _, layers = _postprocess.run(store, inp)
    seconds = time.perf_counter() - t0
    return {
        "seconds": round(seconds, 2),
        "megapixels_per_s": round(size * size / 1e6 / seconds, 3),
        "layers": sorted(layers),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rss_after_imports_mb": round(baseline, 1),
    }


def _write_emc(root: Path, size: int, seed: int = 3) -> None:
    """10 m EMC-BUILT intermediates (S, NRES in m², greenness 0-100; NaN = no data) of `size`² px."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "float32",
        "nodata": float("nan"), "crs": "EPSG:3035", "tiled": True, "blockxsize": 256, "blockysize": 256,
        "transform": Affine(10.0, 0, 4_800_000.0, 0, -10.0, 2_850_000.0), "compress": "DEFLATE",
    }  # fmt: skip
    with contextlib.ExitStack() as stack:
        out = {p: stack.enter_context(rasterio.open(root / f"emc-{p}.tif", "w", **profile)) for p in _EMC}
        for row0 in range(0, size, _STRIP):
            rows = min(_STRIP, size - row0)
            base = (rng.uniform(0, 1, (rows, size)) ** 6).astype(np.float32)
            base[base < 0.3] = 0.0
            green = rng.uniform(0, 100, (rows, size)).astype(np.float32)
            green[base == 0] = np.nan
            win = Window(0, row0, size, rows)
            for p, values in (("s", base * 100), ("nres", base * 30), ("greenness", green)):
                out[p].write(values.astype(np.float32), 1, window=win)


_EMC = ("s", "nres", "greenness")


def _measure_emc(root: Path, block: int, whole: bool) -> dict[str, Any]:
    """Every EMC-BUILT layer from the intermediates under `root` into COGs (in this fresh interpreter)."""
    import rasterio

    from landstack.pipelines.products import codes, cog, emc_blocks, emc_built
    from landstack.pipelines.products.raster import Grid

    baseline = _peak_rss_mb()
    t0 = time.perf_counter()
    out = root / ("whole" if whole else "blocks")
    out.mkdir(exist_ok=True)
    with contextlib.ExitStack() as stack:
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=64))  # as the assemble step
        dsets = {p: [stack.enter_context(rasterio.open(root / f"emc-{p}.tif"))] for p in _EMC}
        ds = dsets["s"][0]
        grid = Grid(ds.crs, ds.transform, (ds.height, ds.width))
        if whole:
            layers = {p: d[0].read(1) for p, d in dsets.items()}
            for cid, (arr, g) in emc_built.emc_products(layers, grid.crs, grid.transform).items():
                cog.write_cog(out / f"{cid}.cog.tif", codes.layer(cid), g, arr)
        else:
            emc_block = max(100, block // 100 * 100)  # what the assemble step uses
            reader = emc_blocks.mosaic_reader(dsets, grid)
            for cid, (path, g) in emc_blocks.stage_products(reader, grid, out, emc_block).items():
                cog.write_cog(out / f"{cid}.cog.tif", codes.layer(cid), g, emc_blocks.read_back(path, block))
    seconds = time.perf_counter() - t0
    return {
        "path": "whole-array" if whole else "blocks",
        "seconds": round(seconds, 2),
        "layers": len(list(out.glob("*.cog.tif"))),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rss_after_imports_mb": round(baseline, 1),
    }


def _emc_report(sizes: list[int], block: int, whole: bool) -> dict[str, Any]:
    report: dict[str, Any] = {"block": block, "resolution_m": 10, "areas": {}}
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-emc-") as tmp:
            t = time.perf_counter()
            _child(["--sizes", str(size), "--setup-emc", tmp])  # so this process stays small
            setup_s = time.perf_counter() - t
            common = ["--block", str(block), "--measure-emc", tmp]
            runs = {"blocks": _child(common)}
            if whole:
                runs["whole"] = _child([*common, "--whole"])
        report["areas"][f"{size}x{size}"] = {"pixels": size * size, "setup_s": round(setup_s, 1), **runs}
    return report


def _child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line.removeprefix("RESULT ")))
    raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000])
    ap.add_argument("--block", type=int, default=1024, help="the step's block size (pixels per side)")
    ap.add_argument("--families", nargs="+", choices=sorted(FAMILIES), default=sorted(FAMILIES))
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--setup", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--measure", nargs=3, metavar=("ROOT", "PREDICTION", "FAMILY"), help=argparse.SUPPRESS)
    ap.add_argument("--emc-assembly", action="store_true", help="measure the EMC-BUILT assembly instead")
    ap.add_argument("--emc-whole", action="store_true", help="with --emc-assembly: also the whole-array path")
    ap.add_argument("--measure-emc", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--setup-emc", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--whole", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.setup_emc:
        _write_emc(args.setup_emc, args.sizes[0])
        print("RESULT {}", flush=True)
        return
    if args.measure_emc:
        print("RESULT " + json.dumps(_measure_emc(args.measure_emc, args.block, args.whole)), flush=True)
        return
    if args.emc_assembly:
        emc = _emc_report(args.sizes, args.block, args.emc_whole)
        out = EMC_RESULTS if args.out == RESULTS else args.out
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(emc, indent=2))
        print(json.dumps(emc, indent=2))
        return
    if args.setup:
        print("RESULT " + json.dumps(_setup(args.setup, args.sizes[0], args.block)), flush=True)
        return
    if args.measure:
        root, prediction, family = args.measure
        print("RESULT " + json.dumps(_measure(Path(root), prediction, family, args.block, args.sizes[0])))
        return
    report: dict[str, Any] = {"block": args.block, "classes": 11, "resolution_m": 10, "tiles": {}}
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench-products-") as tmp:
            common = ["--sizes", str(size), "--block", str(args.block)]
            t = time.perf_counter()
            prediction = _child([*common, "--setup", tmp])["prediction"]
            setup_s = time.perf_counter() - t
            runs = {f: _child([*common, "--measure", tmp, prediction, f]) for f in args.families}
        report["tiles"][f"{size}x{size}"] = {"pixels": size * size, "setup_s": round(setup_s, 1), **runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
