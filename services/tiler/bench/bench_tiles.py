"""Benchmark of tile rendering and AOI statistics, written to bench-results/tiler.json.

1. Tiles: random WebMercatorQuad z14 tiles of an 8192 x 8192 land-cover COG (EPSG:3035, 10 m,
   palette) read with rio-tiler and rendered to PNG with the catalogue's colour map, as the tiler
   does per request (no HTTP, no database: the rendering cost alone).
2. AOI statistics: area per class over an AOI covering the whole COG (67 Mpx, native resolution),
   with the peak resident memory, which follows the statistics chunk size, not the raster.

    python services/tiler/bench/bench_tiles.py [--size 8192] [--tiles 200] [--out bench-results]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import morecantile
import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds
from rio_tiler.io import Reader

from landstack.catalog import get_layer
from landstack.catalog.stac import data_asset
from landstack.catalog.symbology import colormap
from landstack.tiler import statistics
from landstack.tiler.symbology import layer_colormap

REPO = Path(__file__).resolve().parents[3]
LC = "clcplus-backbone-ras"
X0, Y0 = 4_300_000.0, 3_200_000.0


def _write_cog(path: Path, size: int) -> None:
    _, layer = get_layer(LC)
    profile = {
        "driver": "COG",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:3035",
        "transform": Affine(10.0, 0.0, X0, 0.0, -10.0, Y0),
        "nodata": 255,
        "blocksize": 512,
        "overview_resampling": "nearest",
    }
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as ds:
        for row in range(0, size, 1024):
            h = min(1024, size - row)
            block = (1 + (np.indices((h, size))[0] // 64 + np.arange(size) // 64 + row // 64) % 11).astype(
                "uint8"
            )
            block[rng.random(block.shape) < 0.01] = 10
            ds.write(block, 1, window=rasterio.windows.Window(0, row, size, h))
        ds.write_colormap(1, colormap(layer))


def _bench_tiles(path: Path, n: int) -> dict[str, float]:
    tms = morecantile.tms.get("WebMercatorQuad")
    cmap = layer_colormap(LC)
    rnd = random.Random(0)
    times = []
    with Reader(str(path)) as src:
        w, s, e, n_ = src.get_geographic_bounds(src.tms.rasterio_geographic_crs)
        tiles = list(tms.tiles(w, s, e, n_, zooms=[14]))
        for _ in range(n):
            t = rnd.choice(tiles)
            start = time.perf_counter()
            img = src.tile(t.x, t.y, t.z)
            img.render(img_format="PNG", colormap=cmap)
            times.append(time.perf_counter() - start)
    return {
        "tiles": n,
        "tiles_per_s": n / sum(times),
        "p50_ms": 1000 * float(np.percentile(times, 50)),
        "p95_ms": 1000 * float(np.percentile(times, 95)),
    }


def _bench_statistics(path: Path, size: int) -> dict[str, float]:
    # In a fresh process: ru_maxrss is a lifetime peak, and writing the COG raised this one's.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(_statistics_in_process, str(path), size).result()


def _statistics_in_process(path_str: str, size: int) -> dict[str, float]:
    path = Path(path_str)
    x1, y1 = X0 + size * 10.0, Y0 - size * 10.0
    w, s, e, n = transform_bounds("EPSG:3035", "EPSG:4326", X0, y1, x1, Y0)
    aoi = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    item = {"id": "bench", "assets": {"data": {"href": path.as_uri(), **data_asset(get_layer(LC)[1])}}}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = statistics.aoi_statistics(LC, aoi, {2021: [item]})
    seconds = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pixels = result["years"][0]["valid_pixels"]
    return {
        "pixels": pixels,
        "seconds": seconds,
        "mpx_per_s": pixels / seconds / 1e6,
        "peak_rss_mb": rss_after / 1024,
        "peak_rss_growth_mb": (rss_after - rss_before) / 1024,  # over the process after its imports
        "raster_mb": size * size / 2**20,
        "chunk": statistics.CHUNK,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=8192)
    ap.add_argument("--tiles", type=int, default=200)
    ap.add_argument("--out", type=Path, default=REPO / "bench-results")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cog = Path(tmp) / "lc.tif"
        _write_cog(cog, args.size)
        result = {
            "benchmark": "tiler",
            "cog": {"size": args.size, "crs": "EPSG:3035", "resolution_m": 10},
            "tiles_z14": _bench_tiles(cog, args.tiles),
            "aoi_statistics": _bench_statistics(cog, args.size),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tiler.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
