"""`python -m landstack.model_server` / `landstack-model-server`: serve landstack models with KServe.

The command line is KServe's own model-server parser (ports, workers, gRPC limits, logging, ...)
plus the landstack flags (`--model_dir` as KServe's own servers name it); a flag given on the
command line overrides the matching LANDSTACK_MODEL_SERVER_* setting, and a flag left out leaves
the setting alone.
"""

from __future__ import annotations

import argparse
import logging

import kserve
from kserve import model_server as kserve_model_server

from landstack.model_server import rest
from landstack.model_server.errors import ModelSourceError
from landstack.model_server.predictor import LandstackModel
from landstack.model_server.settings import ModelServerSettings
from landstack.model_server.sources import model_refs

log = logging.getLogger("landstack.model_server")

# flags of KServe's parser that are also settings (the settings decide when the flag is absent)
_SHARED = ("model_name", "http_port", "grpc_port", "enable_grpc")
_GRPC_LIMITS = ("grpc_max_send_message_length", "grpc_max_receive_message_length")
_OWN = (
    "model_version",
    "registry_url",
    "model_url",
    "model_dir",
    "models",
    "registry_prefix",
    "max_batch",
    "max_payload_bytes",
    "device",
    "torch_threads",
)


def build_parser() -> argparse.ArgumentParser:
    """KServe's model-server parser with the landstack flags added."""
    p = argparse.ArgumentParser(
        description="Serve landstack models over the open inference protocol (V2 REST/gRPC, V1).",
        parents=[kserve_model_server.parser],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model_version", help="registry version or 'latest' (with --model_name)")
    p.add_argument("--registry_url", help="object-store root of the model registry")
    p.add_argument("--model_url", help="one model.pt file instead of the registry")
    p.add_argument(
        "--model_dir",
        help="a local folder holding one registry version (model.pt, item.json) or a release "
        "(release.json, one such folder per member, each served under its name), as KServe's storage "
        "initializer copies an InferenceService's storage URI to /mnt/models",
    )
    p.add_argument("--models", help="comma-separated name[:version] registry models served side by side")
    p.add_argument("--registry_prefix", help="serve every registered model whose name starts with this")
    p.add_argument("--max_batch", type=int, help="largest batch accepted in one request")
    p.add_argument("--max_payload_bytes", type=int, help="largest request body / gRPC message")
    p.add_argument("--device", help="torch device (cpu, cuda, cuda:1); default cuda when available")
    p.add_argument("--torch_threads", type=int, help="CPU threads for the models")
    return p


def settings_from_args(argv: list[str] | None = None) -> tuple[ModelServerSettings, argparse.Namespace]:
    """Settings (environment overridden by the flags given) and every parsed flag.

    Flags shared with the settings, and KServe's gRPC limits, are pre-set to None so that only the
    flags really given replace them; the others keep their parser defaults.
    """
    given = argparse.Namespace(**dict.fromkeys(_SHARED + _GRPC_LIMITS))
    args, _ = build_parser().parse_known_args(argv, namespace=given)
    overrides = {k: getattr(args, k) for k in _SHARED + _OWN if getattr(args, k, None) is not None}
    settings = ModelServerSettings(**overrides)
    for key in _GRPC_LIMITS:
        if getattr(args, key) is None:
            setattr(args, key, settings.max_payload_bytes)
    return settings, args


def main(argv: list[str] | None = None) -> None:
    settings, args = settings_from_args(argv)
    if args.workers != 1:
        raise ModelSourceError(
            f"--workers {args.workers}: one process holds the models once; run more replicas instead"
        )
    # KServe's gRPC server reads its message limits from KServe's own parsed arguments
    for key in _GRPC_LIMITS:
        setattr(kserve_model_server.args, key, getattr(args, key))
    models = [LandstackModel(settings, ref) for ref in model_refs(settings)]
    for m in models:
        m.load()
        log.info("loaded %s version %s on %s", m.name, m.version, m.device)
    server = kserve.ModelServer(
        http_port=settings.http_port,
        grpc_port=settings.grpc_port,
        enable_grpc=settings.enable_grpc,
        max_threads=args.max_threads,
        max_asyncio_workers=args.max_asyncio_workers,
        enable_docs_url=args.enable_docs_url,
        enable_latency_logging=args.enable_latency_logging,
        access_log_format=args.access_log_format,
        event_loop=args.event_loop,
        timeout_keep_alive=args.timeout_keep_alive,
    )
    rest.install(kserve_model_server.app, server.dataplane, settings.max_payload_bytes)
    server.start(list(models))


if __name__ == "__main__":
    main()
