"""Benchmark of the product post-processing and COG delivery.

Three families, each in its own interpreter so its peak RSS is its own, on a 1000 x 1000 px tile:

- clcplus: 11-class probabilities (uint8 0-250) of two reference years + data score ->
  bilateral filter, interannual calibration, recoding, sea buffer -> RAS, RASCL, RASDL, RASPL,
  each written as COG + .aux.xml + quicklook PNG (whole arrays in memory);
- clcplus_blockwise: the same post-processing block by block (two passes: thresholds, layers)
  from memory-mapped inputs, COGs written block by block: peak RSS follows the block size;
- hrl: raw IMD + RAS of two years -> sealing mask, IMD, change, as COGs (+ tables, quicklooks);
- emc: 3 ensemble members for S and NRES, NDWI, NDVI -> S/NRES/GREENNESS at 10 m, aggregated and
  reprojected to the 15 EMC-BUILT layers, as COGs.

    python pipelines/bench/bench_products.py [--size 1000]

Writes bench-results/products.json (seconds per stage, megapixels per second, peak RSS) and prints it.
"""

from __future__ import annotations

import argparse
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


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _grid(size: int, res: float = 10.0) -> Any:
    from landstack.pipelines.products.raster import Grid

    return Grid.from_origin("EPSG:3035", 4_800_000, 2_850_000, res, size, size)


def _probabilities(rng: np.random.Generator, size: int) -> np.ndarray:
    from landstack.pipelines.products.clcplus import encode_probabilities

    # spatially coherent classes (50 px parcels) with noisy, peaked probabilities
    parcels = rng.integers(0, 11, (size // 50 + 1, size // 50 + 1))
    cls = np.repeat(np.repeat(parcels, 50, 0), 50, 1)[:size, :size]
    logits = rng.normal(0, 1, (11, size, size)).astype(np.float32)
    np.put_along_axis(logits, cls[None], 3.0 + rng.normal(0, 1.5, (1, size, size)).astype(np.float32), 0)
    prob = np.exp(logits)
    prob /= prob.sum(axis=0)
    return encode_probabilities(prob, np.ones((size, size), bool))


def _deliver(store: Any, cid: str, grid: Any, arr: np.ndarray, timings: dict[str, float]) -> None:
    from landstack.pipelines.products import codes, cog, quicklook

    spec = codes.layer(cid)
    t = time.perf_counter()
    cog.deliver(store, f"{cid}/tile.tif", spec, grid, arr)
    timings["cog_s"] = timings.get("cog_s", 0.0) + time.perf_counter() - t
    t = time.perf_counter()
    quicklook.put_quicklook(store, f"{cid}/tile.png", store.path(f"{cid}/tile.tif"), spec)
    timings["quicklook_s"] = timings.get("quicklook_s", 0.0) + time.perf_counter() - t


def _warm_imports() -> None:
    """Import the delivery stack (GDAL, rio-cogeo, PIL) before the clock starts."""
    from landstack.pipelines.products import cog, quicklook

    assert cog.BLOCK and quicklook.MAX_SIZE


def clcplus_path(size: int) -> dict[str, Any]:
    from landstack.pipelines.products import clcplus, codes
    from landstack.storage import ObjectStore

    rng = np.random.default_rng(0)
    enc, prev = _probabilities(rng, size), _probabilities(rng, size)
    score = rng.integers(0, 150, (size, size))
    sea = np.zeros((size, size), bool)
    sea[: size // 10] = True
    corrections = np.zeros((size, size), np.uint8)
    corrections[size // 2 : size // 2 + 50, : size // 4] = 1
    inside = np.ones((size, size), bool)
    inside[:, -size // 20 :] = False
    timings: dict[str, float] = {}
    _warm_imports()
    t0 = time.perf_counter()
    layers = clcplus.clcplus_layers(
        enc, score, prev_encoded=prev, production_area=inside, sea=sea, corrections=corrections
    )
    timings["postprocess_s"] = time.perf_counter() - t0
    grid = _grid(size)
    with tempfile.TemporaryDirectory() as tmp:
        store = ObjectStore(Path(tmp).as_uri())
        for cid, arr in (
            (codes.CLCPLUS_RAS, layers.ras),
            (codes.CLCPLUS_RASCL, layers.rascl),
            (codes.CLCPLUS_RASDL, layers.rasdl),
            (codes.CLCPLUS_RASPL, layers.raspl),
        ):
            _deliver(store, cid, grid, arr, timings)
    total = time.perf_counter() - t0
    return {
        **timings,
        "seconds": total,
        "megapixels_per_s": size * size / 1e6 / total,
        "layers": 4,
        "peak_rss_mb": _peak_rss_mb(),
    }


def clcplus_blockwise_path(size: int, block: int = 256) -> dict[str, Any]:
    """The same CLCplus chain with inputs and outputs as memory maps, processed block by block."""
    from landstack.pipelines.products import clcplus_blocks, codes, cog
    from landstack.pipelines.products.raster import windows

    rng = np.random.default_rng(0)
    timings: dict[str, float] = {}
    _warm_imports()
    with tempfile.TemporaryDirectory() as tmp:
        enc = np.lib.format.open_memmap(f"{tmp}/enc.npy", "w+", np.uint8, (11, size, size))
        prev = np.lib.format.open_memmap(f"{tmp}/prev.npy", "w+", np.uint8, (11, size, size))
        for win in windows((size, size), block):
            rows = slice(win.row_off, win.row_off + win.height)
            cols = slice(win.col_off, win.col_off + win.width)
            enc[:, rows, cols] = _probabilities(rng, block)[:, : win.height, : win.width]
            prev[:, rows, cols] = _probabilities(rng, block)[:, : win.height, : win.width]
        score = rng.integers(0, 150, (size, size)).astype(np.uint16)
        ids = (codes.CLCPLUS_RAS, codes.CLCPLUS_RASCL, codes.CLCPLUS_RASDL, codes.CLCPLUS_RASPL)
        outs = {
            cid: np.lib.format.open_memmap(f"{tmp}/{cid}.npy", "w+", codes.layer(cid).dtype, (size, size))
            for cid in ids
        }
        t0 = time.perf_counter()
        for win, layers in clcplus_blocks.clcplus_blocks(enc, score, prev_encoded=prev, block=block):
            rows = slice(win.row_off, win.row_off + win.height)
            cols = slice(win.col_off, win.col_off + win.width)
            for cid, arr in zip(ids, (layers.ras, layers.rascl, layers.rasdl, layers.raspl), strict=True):
                outs[cid][rows, cols] = arr
        timings["postprocess_s"] = time.perf_counter() - t0
        t = time.perf_counter()
        grid = _grid(size)
        for cid in ids:
            blocks = (
                (w, outs[cid][w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width])
                for w in windows((size, size), block)
            )
            cog.write_cog(Path(tmp) / f"{cid}.tif", codes.layer(cid), grid, blocks)
        timings["cog_s"] = time.perf_counter() - t
    total = time.perf_counter() - t0
    return {
        **timings,
        "seconds": total,
        "megapixels_per_s": size * size / 1e6 / total,
        "block": block,
        "layers": 4,
        "peak_rss_mb": _peak_rss_mb(),
    }


def hrl_path(size: int) -> dict[str, Any]:
    from landstack.pipelines.products import codes, hrl
    from landstack.storage import ObjectStore

    rng = np.random.default_rng(1)
    raw_prev = np.clip(rng.normal(20, 35, (size, size)), 0, 100).astype(np.float32)
    raw = np.clip(raw_prev + rng.normal(0, 5, (size, size)), 0, 100).astype(np.float32)
    ras = rng.choice(np.arange(1, 12, dtype=np.uint8), (size, size))
    timings: dict[str, float] = {}
    _warm_imports()
    t0 = time.perf_counter()
    prev = hrl.hrl_layers(raw_prev, ras).imd
    layers = hrl.hrl_layers(raw, ras, previous_imd=prev, calibration_tolerance=2, change_tolerance=5)
    timings["postprocess_s"] = time.perf_counter() - t0
    assert layers.change is not None
    grid = _grid(size)
    with tempfile.TemporaryDirectory() as tmp:
        store = ObjectStore(Path(tmp).as_uri())
        for cid, arr in (
            (codes.HRL_IMD, layers.imd),
            (codes.HRL_SEALING, layers.sealing_mask),
            (codes.HRL_CHANGE, layers.change),
        ):
            _deliver(store, cid, grid, arr, timings)
    total = time.perf_counter() - t0
    return {
        **timings,
        "seconds": total,
        "megapixels_per_s": size * size / 1e6 / total,
        "layers": 3,
        "peak_rss_mb": _peak_rss_mb(),
    }


def emc_path(size: int) -> dict[str, Any]:
    from landstack.pipelines.products import codes, cog, emc_built
    from landstack.storage import ObjectStore

    rng = np.random.default_rng(2)
    base = rng.uniform(0, 1, (size, size)) ** 4
    s_members = [np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1) for _ in range(3)]
    nres_members = [m * 0.3 for m in s_members]
    ndwi = rng.uniform(-0.5, 0.4, (size, size))
    ndvi = rng.uniform(0.0, 0.9, (size, size))
    grid = _grid(size)
    timings: dict[str, float] = {}
    _warm_imports()
    t0 = time.perf_counter()
    layers = emc_built.emc_layers_10m(s_members, nres_members, ndwi, ndvi)
    timings["postprocess_10m_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    products = emc_built.emc_products(layers, grid.crs, grid.transform)
    timings["aggregate_reproject_s"] = time.perf_counter() - t
    total_s = float(layers["s"].sum())
    s_1km = products["emc-built-s-1km"][0]
    spec_1km = codes.layer("emc-built-s-1km")
    with tempfile.TemporaryDirectory() as tmp:
        store = ObjectStore(Path(tmp).as_uri())
        t = time.perf_counter()
        for cid, (arr, g) in products.items():
            cog.deliver(store, f"{cid}/tile.tif", codes.layer(cid), g, arr)
        timings["cog_s"] = time.perf_counter() - t
    total = time.perf_counter() - t0
    return {
        **timings,
        "seconds": total,
        "megapixels_per_s": size * size / 1e6 / total,
        "layers": len(products),
        "s_total_m2_10m": total_s,
        "s_total_m2_1km_encoded": int(s_1km[s_1km != spec_1km.nodata].astype(np.int64).sum()),
        "peak_rss_mb": _peak_rss_mb(),
    }


_PATHS = {
    "clcplus": clcplus_path,
    "clcplus_blockwise": clcplus_blockwise_path,
    "hrl": hrl_path,
    "emc": emc_path,
}


def _run(path: str, size: int) -> dict[str, Any]:
    """Run one family in a fresh interpreter, so its peak RSS is its own."""
    cmd = [sys.executable, __file__, "--path", path, "--size", str(size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line.removeprefix("RESULT ")))
    raise RuntimeError(f"{path} path failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--path", choices=sorted(_PATHS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.path:
        print("RESULT " + json.dumps(_PATHS[args.path](args.size)), flush=True)
        return
    report: dict[str, Any] = {
        "tile": {"pixels": args.size * args.size, "classes": 11, "resolution_m": 10},
        **{name: _run(name, args.size) for name in _PATHS},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
