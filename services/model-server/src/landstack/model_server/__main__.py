"""`python -m landstack.model_server` / `landstack-model-server`: serve one model with KServe.

Flags override the LANDSTACK_MODEL_SERVER_* settings; KServe's other flags (workers, threads, ...)
are read by KServe itself from the same command line.
"""

from __future__ import annotations

import argparse

import kserve
from kserve.utils.utils import strtobool

from landstack.model_server.predictor import LandstackModel
from landstack.model_server.settings import ModelServerSettings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Serve one landstack model over the open inference protocol.")
    p.add_argument("--model_name", help="registry name and KServe model name")
    p.add_argument("--model_version", help="registry version or 'latest'")
    p.add_argument("--registry_url", help="object-store root of the model registry")
    p.add_argument("--model_url", help="a model.pt file (instead of the registry)")
    p.add_argument("--http_port", type=int)
    p.add_argument("--grpc_port", type=int)
    p.add_argument("--enable_grpc", type=strtobool)
    return p


def main(argv: list[str] | None = None) -> None:
    args, _ = _parser().parse_known_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    settings = ModelServerSettings(**overrides)
    model = LandstackModel(settings)
    model.load()
    server = kserve.ModelServer(
        http_port=settings.http_port, grpc_port=settings.grpc_port, enable_grpc=settings.enable_grpc
    )
    server.start([model])


if __name__ == "__main__":
    main()
