"""Benchmark of the whole predict step on one synthetic tile (features + inference + writing).

A synthetic Sentinel-2 archive (static catalogue, 5-day revisit over 18 months) a little larger
than the `--size` x `--size` px area is written once; models of the project's default sizes
(TempCNN 64 filters, U-Net width 32 depth 3, impervious CNN defaults; trained one epoch on random
data: the numbers do not matter, the shapes do) are registered; then `step run predict` runs in
its own process for all four product families with the local backend, so its peak RSS is its
own. The step reads the COGs window by window (`inference.direct`; UTM assets onto the EPSG:3035
roll-out grid). Reported: pixels/s over the whole step, wall and CPU seconds (the CPU seconds say
more on a shared machine), seconds per stage, peak RSS (target < 4 GB).

    python pipelines/bench/bench_predict.py [--size 1000] [--window 256] [--device cpu|cuda]
                                            [--archive DIR]

The default is the issue's 1000 x 1000 px: on this 2-core machine the step took 4 min of CPU,
3.7 min wall at a load average of 3 (9 min at 6), plus about 3 min to write the archive and 1 min
to register the models; `--size 250` is a quick run. `--archive DIR` keeps the synthetic archive
and the registered models in DIR and reuses them on the next run. `--device cuda` runs the same on
a CUDA machine (the local backend on the GPU). Writes bench-results/predict.json (the cuda variant
predict-cuda.json) and prints it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE_YEAR = 2023
LON, LAT = 16.3, 48.2
MODELS = {
    "clcplus-backbone": "tempcnn",
    "hrl-imperviousness": "unet-imd",
    "emc-built": "unet-built",
    "cisc": "impervious",
}


def _register(registry: str) -> None:
    from landstack.models.fitting import fit_patch_model, fit_tempcnn
    from landstack.models.patches import PatchSet
    from landstack.models.registry import register_model
    from landstack.models.tables import SampleTable
    from landstack.models.training import TrainConfig
    from landstack.pipelines.features import FeatureConfig, unet_features

    rng = np.random.default_rng(0)
    cfg = FeatureConfig()
    tc = TrainConfig(epochs=1, batch_size=64, seed=0)
    table = SampleTable(
        x=rng.normal(0.2, 0.1, (512, len(cfg.names), 54)).astype(np.float32),
        labels=rng.integers(1, 12, 512),
        features=cfg.names,
        time_steps=54,
    )
    t = fit_tempcnn(table, tc, name="tempcnn", version="1")
    register_model(registry, t.model, t.metadata)
    probe = {b: np.ones((3, 1), np.uint16) for b in ("B02", "B03", "B04", "B08", "B11", "B12")}
    _, names = unet_features(probe, np.full((3, 1), 4, np.uint8), np.zeros(3), np.arange(3.0), cfg)
    x = rng.normal(0, 1, (8, len(names), 64, 64)).astype(np.float32)
    for name in ("unet-imd", "unet-built"):
        target = "imd" if name == "unet-imd" else "built_up_m2"
        ps = PatchSet(x, rng.uniform(0, 100, (8, 1, 64, 64)).astype(np.float32), names, [target])
        u = fit_patch_model(ps, tc, "UNet", name=name, version="1")
        register_model(registry, u.model, u.metadata)
    cls = PatchSet(x, rng.integers(0, 4, (8, 64, 64)).astype(np.uint8), names, ["class"])
    c = fit_patch_model(cls, tc, "ImperviousCNN", name="impervious", version="1")
    register_model(registry, c.model, c.metadata)


def _area(size: int) -> tuple[str, list[float]]:
    """A roll-out tile and an EPSG:4326 bbox of about size x size px (10 m) inside it."""
    from landstack.catalog.grid import RolloutTile, transformer

    x, y = transformer("EPSG:4326", "EPSG:3035").transform(LON, LAT)
    x, y = round(x / 10) * 10, round(y / 10) * 10
    half = size * 10 / 2
    tile = RolloutTile.at(x, y)
    to_wgs = transformer("EPSG:3035", "EPSG:4326")
    # the inner bbox: its outer bounds in EPSG:3035 are then close to size x size
    (lo_x, lo_y), (hi_x, hi_y) = (
        to_wgs.transform(x - half + 20, y - half + 20),
        to_wgs.transform(x + half - 20, y + half - 20),
    )
    return tile.code, [lo_x, lo_y, hi_x, hi_y]


def predict_path(params: dict[str, Any]) -> dict[str, Any]:
    """One `predict` step run in this process; its seconds, pixels and peak RSS."""
    import rasterio

    from landstack.pipelines.steps import run_step
    from landstack.storage import ObjectStore

    stages: dict[str, Any] = {}

    class _Stages(logging.Handler):
        """The step logs its per-stage seconds; keep them for the report."""

        def emit(self, record: logging.LogRecord) -> None:
            if "per stage" in str(record.msg) and isinstance(record.args, tuple):
                stages.update(record.args[1], cogs_and_item=round(record.args[2], 1))

    steps_log = logging.getLogger("landstack.steps")
    steps_log.setLevel(logging.INFO)
    steps_log.addHandler(_Stages())
    store = ObjectStore(params["store"])
    t = time.perf_counter()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    out = run_step("predict", params["input"], store)
    seconds = time.perf_counter() - t
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    with rasterio.open(out["assets"]["data-score"]) as src:
        pixels = src.width * src.height
        shape = [src.height, src.width]
    return {
        "seconds": round(seconds, 2),
        "pixels": pixels,
        "shape": shape,
        "valid_pixels": out["valid_pixels"],
        "pixels_per_s": round(pixels / seconds, 1),
        "cpu_seconds": round(cpu_s, 1),
        "stage_seconds": stages,
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1000, help="pixels per side of the predicted area")
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--archive", type=Path, help="keep (and reuse) the archive and models in this folder")
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.path:
        print(json.dumps(predict_path(json.loads(args.path))))
        return

    from landstack.pipelines.synth import Aoi, SynthConfig, write_archive
    from landstack.storage import ObjectStore

    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        root = args.archive.resolve() / f"size-{args.size}" if args.archive else Path(tmp)
        t = time.perf_counter()
        cfg = SynthConfig(
            Aoi.around(LON, LAT, args.size * 10 + 600), dt.date(2022, 10, 1), dt.date(2024, 3, 31)
        )
        archive_store = ObjectStore((root / "archive").as_uri())
        collection_key = "archive/collection.json"  # written last: the archive is complete
        reused = archive_store.exists(collection_key)
        if not reused:
            collection_key = write_archive(cfg, archive_store, "archive").collection_key
        archive_s = time.perf_counter() - t
        registry = ObjectStore((root / "registry").as_uri()).url
        if not (root / "registry").exists():
            _register(registry)
        tile, bbox = _area(args.size)
        inp = {
            "tile": tile,
            "aoi": bbox,
            "year": REFERENCE_YEAR,
            "source": archive_store.href(collection_key),
            "models": MODELS,
            "registry_url": registry,
            "window": args.window,
        }
        params = {"store": (Path(tmp) / "out").as_uri(), "input": inp}
        env = dict(os.environ)
        if args.device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""  # the local backend picks CUDA when it sees one
        cmd = [sys.executable, __file__, "--path", json.dumps(params)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if proc.returncode != 0:
            sys.exit(f"predict run failed:\n{proc.stderr[-4000:]}")
        run = json.loads(proc.stdout.strip().splitlines()[-1])
    report = {
        "bench": "predict step, whole tile: read + mask + features + 4 families' models + COGs + item",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
        "device": args.device,
        "size_px": args.size,
        "window": args.window,
        "acquisitions_archive_seconds": round(archive_s, 1),
        "archive_reused": reused,
        "families": MODELS,
        **run,
        "target_peak_rss_gb": 4.0,
        "peak_rss_met": run["peak_rss_gb"] < 4.0,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    out = Path("bench-results") / ("predict.json" if args.device == "cpu" else "predict-cuda.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
