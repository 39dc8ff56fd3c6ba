"""Benchmark TempCNN inference in-process and through the model server (V2 binary REST, gRPC, JSON).

Writes bench-results/model_server.json (or --out). Same batches of --pixels samples x 12 features x
54 time steps (default 65,536) everywhere; the model is the project's TempCNN (64 filters, dense
256, 11 classes) with random weights and non-trivial batch-norm statistics.

- in-process CPU variants: the plain module under no_grad on one batch (the earlier figure);
  batch norm folded + inference_mode at several chunk sizes on intra-op threads (the earlier
  server path); `inference_runner_*`: landstack.models.inference.InferenceRunner, what the
  server's engine and the in-process backend run now (folded, channels-last 2-D convolutions,
  cache-sized chunks on single-threaded workers); optionally `torch.compile` (--compile); each as
  pixels/s and share of the matmul rate measured in the same process right before and after;
- served: `python -m landstack.model_server` on loopback ports with the same model and threads,
  the landstack client over binary REST and gRPC with FP16 on the wire and --in-flight requests
  at once, V2 JSON (FP32, fewer pixels: --json-pixels) — each as pixels/s and as a share of the
  best in-process throughput (the best variant above, or the server's own engine measured right
  before the server starts, whichever is higher);
- `--device cuda` runs the same on a GPU: in-process fp32, bf16 autocast, bf16 + torch.compile,
  host->device copies from pageable vs pinned memory, and served with FP16 payloads.

    nice -n 5 .venv/bin/python services/model-server/bench/bench_model_server.py [--pixels 65536]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from landstack.model_server.engine import Engine
from landstack.model_server.process import serve
from landstack.models.folding import fold_batchnorm
from landstack.models.inference import TEMPCNN_CPU_CHUNK, InferenceRunner
from landstack.models.modelfile import build_model, inference_module
from landstack.models.registry import register_model
from landstack.models.tempcnn import tempcnn_flops
from landstack.pipelines.inference.client import InferenceClient

REPO = Path(__file__).resolve().parents[3]
NAME = "tempcnn-bench"
FEATURES = ["B01", "B03", "B04", "B05", "B08", "B09", "B11", "B12", "NDVI", "NDWI", "NDMI", "NBR"]


def _metadata() -> dict[str, Any]:
    return {
        "format_version": 1,
        "name": NAME,
        "version": "1.0.0",
        "architecture": "TempCNN",
        "hyperparameters": {},
        "task": "classification",
        "ensemble_size": 1,
        "framework": "pytorch",
        "framework_version": torch.__version__.split("+")[0],
        "input": {
            "features": FEATURES,
            "time_steps": 54,
            "dim_order": ["batch", "feature", "time"],
            "norm": {"mean": [0.0] * 12, "std": [1.0] * 12},
        },
        "output": {"classes": [{"value": v, "name": f"class {v}"} for v in range(1, 12)]},
    }


def _model() -> tuple[torch.nn.Module, dict[str, Any]]:
    torch.manual_seed(0)
    meta = _metadata()
    model = build_model(meta)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval(), meta


def matmul_gflops(device: torch.device, n: int = 2048, windows: int = 6, window_s: float = 0.5) -> float:
    """Best float32 matmul rate over several short windows (the machine is shared: take the best)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        torch.matmul(a, b)
    best = 0.0
    for _ in range(windows):
        _sync(device)
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < window_s:
            torch.matmul(a, b)
            reps += 1
        _sync(device)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9)
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _best_px_s(run: Callable[[], object], pixels: int, repeats: int) -> float:
    """Pixels/s of the best of `repeats` timed runs (after one warm-up run)."""
    run()
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = max(best, pixels / (time.perf_counter() - t0))
    return best


def _best_px_s_interleaved(
    runs: dict[str, Callable[[], object]], pixels: int, repeats: int
) -> dict[str, float]:
    """Pixels/s of each run's best of `repeats`, taken round-robin (one warm-up run each).

    The machine is shared: timing the variants one after another would give each a different
    share of the other processes' load; round-robin lets every variant see the same periods.
    """
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, 0.0)
    for _ in range(repeats):
        for key, run in runs.items():
            t0 = time.perf_counter()
            run()
            best[key] = max(best[key], pixels / (time.perf_counter() - t0))
    return best


def bench_in_process_cpu(
    model: torch.nn.Module,
    meta: dict[str, Any],
    x: np.ndarray,
    repeats: int,
    chunks: list[int],
    runner_chunks: list[int],
    compile_: bool,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Pixels/s per variant, and other figures (compile time)."""
    n = x.shape[0]
    plain = inference_module(model, meta)
    xt = torch.from_numpy(x)

    def run_plain() -> None:
        with torch.no_grad():
            plain(xt)

    runs: dict[str, Callable[[], object]] = {"plain_no_grad_one_batch": run_plain}
    extras: dict[str, Any] = {}
    folded_module = inference_module(fold_batchnorm(model)[0], meta)

    def run_chunked(module: Callable[[torch.Tensor], torch.Tensor], chunk: int) -> None:
        with torch.inference_mode():
            for s in range(0, n, chunk):
                module(xt[s : s + chunk])

    for chunk in chunks:
        runs[f"folded_inference_mode_chunk_{chunk}"] = partial(run_chunked, folded_module, chunk)
    for chunk in runner_chunks:
        runner = InferenceRunner(model, meta, "cpu", chunk_size=chunk)
        runs[f"inference_runner_workers_{runner.workers}_chunk_{chunk}"] = partial(runner, xt)
    if compile_:
        compiled = torch.compile(folded_module)
        t0 = time.perf_counter()
        with torch.inference_mode():
            compiled(xt[: chunks[0]])
        extras["compile_seconds"] = time.perf_counter() - t0
        runs[f"folded_compiled_chunk_{chunks[0]}"] = partial(run_chunked, compiled, chunks[0])
    return _best_px_s_interleaved(runs, n, repeats), extras


def bench_in_process_cuda(
    model: torch.nn.Module, meta: dict[str, Any], x: np.ndarray, repeats: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """Pixels/s per variant, and host->device copy rates."""
    dev = torch.device("cuda")
    n = x.shape[0]
    out: dict[str, float] = {}
    extras: dict[str, Any] = {}
    fp32 = Engine(model, meta, dev, chunk_size=n, fold=True, autocast="off")
    out["fp32_from_host"] = _best_px_s(partial(fp32.forward, x), n, repeats)
    bf16 = Engine(model, meta, dev, chunk_size=n, fold=True, autocast="bf16")
    x16 = x.astype(np.float16)  # what arrives over the wire
    out["bf16_autocast_fp16_from_host_pinned"] = _best_px_s(partial(bf16.forward, x16), n, repeats)
    on_device = torch.from_numpy(x).to(dev)

    def run_on_device(module: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], object]:
        def run() -> None:
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
                module(on_device)
            torch.cuda.synchronize()

        return run

    out["bf16_autocast_on_device"] = _best_px_s(run_on_device(bf16.module), n, repeats)
    compiled = torch.compile(bf16.module)
    out["bf16_compiled_on_device"] = _best_px_s(run_on_device(compiled), n, repeats)
    host = torch.from_numpy(x)
    pinned = host.pin_memory()
    for label, src in (("pageable", host), ("pinned", pinned)):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(5):
            src.to(dev, non_blocking=True)
        torch.cuda.synchronize()
        extras[f"host_to_device_gb_s_{label}"] = 5 * host.nbytes / (time.perf_counter() - t0) / 1e9
    return out, extras


def bench_served(
    registry: str, x: np.ndarray, args: argparse.Namespace, chunk: int, log_dir: Path
) -> dict[str, Any]:
    n = x.shape[0]
    env = {
        "LANDSTACK_MODEL_SERVER_REGISTRY_URL": registry,
        "LANDSTACK_MODEL_SERVER_MODELS": NAME,
        "LANDSTACK_MODEL_SERVER_ENABLE_GRPC": "true",
        "LANDSTACK_MODEL_SERVER_TORCH_THREADS": str(args.threads),
        "LANDSTACK_MODEL_SERVER_CHUNK_SIZE": str(chunk),
        "LANDSTACK_MODEL_SERVER_DEVICE": args.device,
        "LANDSTACK_MODEL_SERVER_MAX_BATCH": str(max(65536, n)),
    }
    out: dict[str, Any] = {"in_flight": args.in_flight, "wire_dtype": "FP16", "chunk_size": chunk}
    with serve(env, log_dir / "server.log", args=["--enable_latency_logging=false"]) as server:
        for protocol, url in (("rest_binary", server.url), ("grpc", server.grpc_target)):
            with InferenceClient(
                url, protocol="rest" if protocol == "rest_binary" else "grpc", concurrency=args.in_flight
            ) as client:
                client.predict(NAME, x[:256])
                out[protocol] = _best_px_s(partial(client.predict, NAME, x), n, args.repeats)
                print(f"served {protocol}: {out[protocol]:.0f} px/s", flush=True)
        xj = x[: args.json_pixels]
        body = {
            "inputs": [
                {"name": "input", "shape": list(xj.shape), "datatype": "FP32", "data": xj.ravel().tolist()}
            ]
        }
        with httpx.Client(timeout=600) as http:

            def run_json() -> None:
                r = http.post(f"{server.url}/v2/models/{NAME}/infer", json=body)
                r.raise_for_status()

            out["json"] = _best_px_s(run_json, xj.shape[0], 1)
            out["json_pixels"] = int(xj.shape[0])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pixels", type=int, default=65536)
    p.add_argument("--json-pixels", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--in-flight", type=int, default=4)
    p.add_argument(
        "--chunks", default="1024,4096", help="comma-separated chunk sizes for the folded intra-op variant"
    )
    p.add_argument(
        "--runner-chunks",
        default=f"{TEMPCNN_CPU_CHUNK},256",
        help="comma-separated chunk sizes for the InferenceRunner (its default first)",
    )
    p.add_argument(
        "--server-chunk", type=int, default=4096, help="LANDSTACK_MODEL_SERVER_CHUNK_SIZE (samples per pass)"
    )
    p.add_argument(
        "--compile", action="store_true", help="also time torch.compile (CPU; needs a C++ compiler)"
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--out", type=Path, default=REPO / "bench-results" / "model_server.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, meta = _model()
    x = np.random.default_rng(0).normal(size=(args.pixels, 12, 54)).astype(np.float32)
    flops_px = tempcnn_flops(12, 54, 11)
    gflops = matmul_gflops(device)
    print(f"matmul: {gflops:.1f} GFLOP/s ({args.device}, {args.threads} threads)", flush=True)
    result: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
        },
        "device": args.device,
        "threads": args.threads,
        "pixels_per_batch": args.pixels,
        "repeats": args.repeats,
        "input": "12 features x 54 time steps, 11 classes, 64 filters, dense 256",
        "flops_per_pixel": flops_px,
    }
    chunks = [int(c) for c in args.chunks.split(",")]
    runner_chunks = [int(c) for c in args.runner_chunks.split(",")]
    if args.device == "cpu":
        variants, extras = bench_in_process_cpu(
            model, meta, x, args.repeats, chunks, runner_chunks, args.compile
        )
    else:
        variants, extras = bench_in_process_cuda(model, meta, x, args.repeats)
    best_key = max(variants, key=lambda k: variants[k])
    gflops_end = matmul_gflops(device)
    result["matmul_gflops_start_end"] = [gflops, gflops_end]
    gflops = max(gflops, gflops_end)  # the reference is the machine's best rate seen in this run
    result["matmul_gflops"] = gflops
    result["in_process"] = {
        k: {"pixels_per_s": v, "percent_of_matmul_peak": 100 * v * flops_px / 1e9 / gflops}
        for k, v in variants.items()
    }
    result["in_process"].update(extras)
    result["in_process_best"] = best_key
    print(json.dumps(result["in_process"], indent=1), flush=True)
    chunk = args.server_chunk if args.device == "cpu" else args.pixels
    with tempfile.TemporaryDirectory() as tmp:
        register_model(Path(tmp).as_uri(), model, meta)
        # the server's own engine and settings, in this process, right before the server starts
        engine = Engine(model, meta, device, chunk_size=chunk, fold=True)
        wire = x.astype(np.float16) if args.device == "cuda" else x
        engine_px_s = _best_px_s(lambda: engine.forward(wire), args.pixels, args.repeats)
        served = bench_served(Path(tmp).as_uri(), x, args, chunk, Path(tmp))
    # served throughput is compared with the best in-process path seen in this run
    reference = max(engine_px_s, variants[best_key])
    served["in_process_engine_px_s"] = engine_px_s
    served["in_process_best_variant_px_s"] = variants[best_key]
    served["in_process_reference_px_s"] = reference
    for key in ("rest_binary", "grpc", "json"):
        served[f"{key}_share_of_in_process"] = served[key] / reference
    result["served"] = served
    result["load_average_end"] = list(os.getloadavg())
    best_share = result["in_process"][best_key]["percent_of_matmul_peak"]
    result["targets"] = {
        "in_process_percent_of_matmul_peak": best_share,
        "in_process_ge_50_percent": best_share >= 50,
        "served_best_share": max(
            served["rest_binary_share_of_in_process"], served["grpc_share_of_in_process"]
        ),
        "served_ge_0_8": max(served["rest_binary_share_of_in_process"], served["grpc_share_of_in_process"])
        >= 0.8,
    }
    print(json.dumps(served, indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
