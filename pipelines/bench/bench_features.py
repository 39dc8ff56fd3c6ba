"""Benchmark of the feature computation (and of the synthetic archive generator).

Feature throughput (pixels/s) and peak RSS for a 1000 x 1000 px stack with 70 observations and 12
features (8 bands + 4 indices, 54 ten-day steps), computed blockwise with dask, side by side with a
straightforward xarray implementation (mask, interpolate_na, interp along time) run in the same
invocation. Each path runs in its own process so its peak RSS is its own. The straightforward path
runs on a crop (it is orders of magnitude slower); throughput is per pixel either way.

The command-line path: over one synthetic archive (`--cli-size-m` square, native UTM grid), the
library function alone (search, load, compute) and `landstack features timeseries` end to end
(search, load, compute, 13 COGs into a file:// store), with the number of times the block function
ran against the number of blocks (each block must be computed once, not once per feature).

    python pipelines/bench/bench_features.py [--size 1000] [--obs 70] [--naive-size 100] [--no-synth]
                                             [--cli-size-m 3000] [--no-cli]

Writes bench-results/features.json and prints it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE_YEAR = 2023
RESULTS = Path("bench-results/features.json")


def _stack(size: int, obs: int, chunk: int):  # type: ignore[no-untyped-def]
    """A lazy (time, y, x) stack; each chunk is generated on demand, so nothing is held whole."""
    import dask.array as da
    import xarray as xr

    from landstack.pipelines.features import FeatureConfig

    rng = np.random.default_rng(0)
    times = np.datetime64("2022-10-03") + np.sort(rng.choice(540, obs, replace=False)).astype(
        "timedelta64[D]"
    )
    bands = FeatureConfig().needed_bands

    def make(block_id: tuple[int, ...], kind: int) -> np.ndarray:
        r = np.random.default_rng([kind, *block_id])
        h = min(chunk, size - block_id[1] * chunk)
        w = min(chunk, size - block_id[2] * chunk)
        if kind == len(bands):  # SCL: 60 % clear, clouds, shadows
            return r.choice(np.array([4, 4, 5, 6, 4, 5, 8, 9, 3, 10], np.uint8), (obs, h, w))
        return r.integers(1200, 5000, (obs, h, w), dtype=np.uint16)

    chunks = ((obs,), *(tuple(min(chunk, size - i) for i in range(0, size, chunk)),) * 2)
    data = {}
    for k, b in enumerate([*bands, "SCL"]):
        dtype = np.uint8 if b == "SCL" else np.uint16
        arr = da.map_blocks(lambda block_id=None, k=k: make(block_id, k), chunks=chunks, dtype=dtype)
        data[b] = (("time", "y", "x"), arr)
    coords = {
        "time": times,
        "y": np.arange(size) * -10.0,
        "x": np.arange(size) * 10.0,
        "boa_offset": ("time", np.full(obs, -1000)),
    }
    return xr.Dataset(data, coords=coords)


class _Checksum:
    """A dask store target that keeps only a checksum of what it receives."""

    def __init__(self) -> None:
        self.total = 0.0

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        self.total += float(np.nansum(value, dtype=np.float64))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fast_path(size: int, obs: int, chunk: int, out: Any) -> None:  # out: anything with .put(dict)
    import dask
    import dask.array as da

    from landstack.pipelines.features import timeseries_features

    stack = _stack(size, obs, chunk)
    base = _peak_rss_mb()
    t = time.perf_counter()
    ds = timeseries_features(stack, REFERENCE_YEAR)
    sink = _Checksum()
    with dask.config.set(scheduler="threads"):
        targets: list[Any] = [sink, _Checksum()]
        da.store([ds["features"].data, ds["data_score"].data.astype(np.float32)], targets, lock=True)
    dt_s = time.perf_counter() - t
    out.put(
        {
            "seconds": dt_s,
            "pixels": size * size,
            "pixels_per_s": size * size / dt_s,
            "peak_rss_mb": _peak_rss_mb(),
            "rss_before_mb": base,
            "chunk": chunk,
            "checksum": sink.total,
        }
    )


def naive_path(size: int, obs: int, out: Any) -> None:
    import xarray as xr

    from landstack.pipelines.features import INDICES, FeatureConfig, time_steps

    cfg = FeatureConfig()
    stack = _stack(size, obs, size).compute()
    t = time.perf_counter()
    valid = ~stack.SCL.isin([0, 1, 2, 3, 8, 9])
    refl = {
        b: ((stack[b].astype("float32") + stack.boa_offset) / 10000).where(valid) for b in cfg.needed_bands
    }
    series = {b: refl[b] for b in cfg.bands}
    for name in cfg.indices:
        a, b = INDICES[name]
        series[name] = (refl[a] - refl[b]) / (refl[a] + refl[b])
    steps = time_steps(REFERENCE_YEAR)
    result = []
    for name in cfg.names:
        filled = series[name].interpolate_na("time", use_coordinate=True, fill_value="extrapolate")
        result.append(filled.interp(time=steps))
    stacked = xr.concat(result, dim="feature")
    checksum = float(stacked.sum())
    dt_s = time.perf_counter() - t
    out.put(
        {
            "seconds": dt_s,
            "pixels": size * size,
            "pixels_per_s": size * size / dt_s,
            "peak_rss_mb": _peak_rss_mb(),
            "checksum": checksum,
        }
    )


def synth_path(size_m: float, out: Any) -> None:
    from landstack.pipelines.synth import Aoi, SynthConfig, write_archive
    from landstack.storage import ObjectStore

    with tempfile.TemporaryDirectory() as tmp:
        cfg = SynthConfig(Aoi.around(16.3, 48.2, size_m), dt.date(2022, 10, 1), dt.date(2024, 3, 31), seed=0)
        t = time.perf_counter()
        result = write_archive(cfg, ObjectStore(Path(tmp).as_uri()), "bench")
        dt_s = time.perf_counter() - t
        out.put(
            {
                "seconds": dt_s,
                "aoi_km": size_m / 1000,
                "items": len(result.item_keys),
                "shape": list(result.scene.shape) if result.scene else None,
                "peak_rss_mb": _peak_rss_mb(),
            }
        )


def _archive(root: Path, size_m: float) -> dict[str, Any]:
    """A synthetic archive under `root`; returns the command-line arguments that read it."""
    from landstack.pipelines.synth import Aoi, SynthConfig, write_archive
    from landstack.storage import ObjectStore

    aoi = Aoi.around(16.3, 48.2, size_m)
    cfg = SynthConfig(aoi, dt.date(2022, 10, 1), dt.date(2024, 3, 31), seed=0)
    store = ObjectStore(root.as_uri())
    result = write_archive(cfg, store, "archive")
    return {
        "bbox": ",".join(f"{v:.3f}" for v in aoi.bbox),
        "crs": aoi.crs,
        "catalog": store.href(result.collection_key),
    }


def _counting_blocks() -> list[int]:
    """Count every run of the feature block function (the dask task that does the work)."""
    from landstack.pipelines import features

    calls: list[int] = []
    inner = features._series_block

    def counted(*args: Any, **kwargs: Any) -> np.ndarray:
        calls.append(1)
        return inner(*args, **kwargs)

    features._series_block = counted
    return calls


def library_path(archive: dict[str, Any], out: Any) -> None:
    """Search, load and compute the features of the archive with the library function only."""
    import dask
    import dask.array as da

    from landstack.pipelines import ingest
    from landstack.pipelines.features import FeatureConfig, timeseries_features
    from landstack.pipelines.synth import Aoi

    calls = _counting_blocks()
    cfg = FeatureConfig()
    t = time.perf_counter()
    aoi = Aoi(tuple(float(v) for v in archive["bbox"].split(",")), archive["crs"])  # type: ignore[arg-type]
    items = ingest.search_items(
        aoi, f"{REFERENCE_YEAR - 1}-10-01", f"{REFERENCE_YEAR + 1}-03-31", catalog_href=archive["catalog"]
    )
    ingest.configure_gdal()
    stack = ingest.load_stack(items, cfg.needed_bands, aoi=aoi, crs="native")
    ds = timeseries_features(stack, REFERENCE_YEAR, cfg)
    with dask.config.set(scheduler="threads"):
        da.store(
            [ds["features"].data, ds["data_score"].data.astype(np.float32)],
            [_Checksum(), _Checksum()],  # type: ignore[list-item]
            lock=True,
        )
    dt_s = time.perf_counter() - t
    pixels = int(ds.sizes["x"] * ds.sizes["y"])
    out.put(
        {
            "seconds": dt_s,
            "pixels": pixels,
            "observations": int(stack.sizes["time"]),
            "pixels_per_s": pixels / dt_s,
            "peak_rss_mb": _peak_rss_mb(),
            "block_computations": len(calls),
            "blocks": int(np.prod(ds["data_score"].data.numblocks)),
        }
    )


def cli_path(archive: dict[str, Any], store_url: str, out: Any) -> None:
    """`landstack features timeseries` over the archive, in this process, writing COGs."""
    import os

    from landstack.pipelines import features

    os.environ["LANDSTACK_STORE_URL"] = store_url
    from landstack.pipelines.cli import app

    calls = _counting_blocks()
    blocks: list[int] = []
    inner = features.timeseries_features

    def recorded(*args: Any, **kwargs: Any) -> Any:
        ds = inner(*args, **kwargs)
        blocks.append(int(np.prod(ds["data_score"].data.numblocks)))
        pixels.append(int(ds.sizes["x"] * ds.sizes["y"]))
        return ds

    pixels: list[int] = []
    features.timeseries_features = recorded
    argv = ["features", "timeseries", "--bbox", archive["bbox"], "--crs", archive["crs"], "--year"]
    argv += [str(REFERENCE_YEAR), "--catalog", archive["catalog"], "--target-crs", "native", "--prefix", "f"]
    t = time.perf_counter()
    app(argv, standalone_mode=False)
    dt_s = time.perf_counter() - t
    cogs = sorted(Path(store_url.removeprefix("file://"), "f").glob("*.tif"))
    out.put(
        {
            "seconds": dt_s,
            "pixels": pixels[0],
            "pixels_per_s": pixels[0] / dt_s,
            "peak_rss_mb": _peak_rss_mb(),
            "block_computations": len(calls),
            "blocks": blocks[0],
            "cogs": len(cogs),
            "cog_mb": round(sum(p.stat().st_size for p in cogs) / 2**20, 1),
        }
    )


def cli_report(size_m: float) -> dict[str, Any]:
    """The library function and the command over one archive, each in its own process."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        archive = _archive(Path(tmp) / "archive", size_m)
        synth_s = time.perf_counter() - t
        spec = json.dumps(archive)
        library = _run("library", spec)
        cli = _run("cli", spec, (Path(tmp) / "out").as_uri())
    return {
        "aoi_km": size_m / 1000,
        "archive_seconds": synth_s,
        "library": library,
        "command": cli,
        "command_over_library": cli["seconds"] / library["seconds"],
        "each_block_once": cli["block_computations"] == cli["blocks"],
    }


class _Print:
    """Hands a path's result to the parent process as one JSON line on stdout."""

    def put(self, result: dict[str, Any]) -> None:
        print("RESULT " + json.dumps(result), flush=True)


def _run(path: str, *args: Any) -> dict[str, Any]:
    """Run one path in a fresh interpreter, so its peak RSS is its own."""
    cmd = [sys.executable, __file__, "--path", path, *[str(a) for a in args]]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line.removeprefix("RESULT ")))
    raise RuntimeError(f"{path} path failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--obs", type=int, default=70)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--naive-size", type=int, default=100)
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--cli-size-m", type=float, default=3000.0)
    ap.add_argument("--no-cli", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--path", choices=["fast", "naive", "synth", "library", "cli"], help=argparse.SUPPRESS)
    ap.add_argument("params", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.path == "fast":
        size, obs, chunk = (int(v) for v in args.params)
        fast_path(size, obs, chunk, _Print())
        return
    if args.path == "naive":
        size, obs = (int(v) for v in args.params)
        naive_path(size, obs, _Print())
        return
    if args.path == "synth":
        synth_path(float(args.params[0]), _Print())
        return
    if args.path == "library":
        library_path(json.loads(args.params[0]), _Print())
        return
    if args.path == "cli":
        cli_path(json.loads(args.params[0]), args.params[1], _Print())
        return

    fast = _run("fast", args.size, args.obs, args.chunk)
    naive = _run("naive", args.naive_size, args.obs)
    report: dict[str, Any] = {
        "stack": {"pixels": args.size * args.size, "observations": args.obs, "features": 12, "steps": 54},
        "blockwise": fast,
        "straightforward_xarray": naive,
        "speedup": fast["pixels_per_s"] / naive["pixels_per_s"],
        "targets": {"speedup_min": 10, "peak_rss_max_mb": 4096},
    }
    report["targets_met"] = report["speedup"] >= 10 and fast["peak_rss_mb"] < 4096
    if not args.no_synth:
        report["synth_10km_1.5y"] = _run("synth", 10_000.0)
        report["synth_10km_1.5y"]["target_seconds"] = 120
    if not args.no_cli:
        report["features_timeseries_command"] = cli_report(args.cli_size_m)
        report["targets_met"] = (
            report["targets_met"] and report["features_timeseries_command"]["each_block_once"]
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
