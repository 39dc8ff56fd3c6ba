"""Shared test fixtures: the location of ../shared and its offline schema validators."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests read reference data from ../shared beside the repository")
    return path


@pytest.fixture(scope="session")
def schemas() -> ModuleType:
    """../shared/tools/schemas.py (offline STAC, ISO 19139, Argo, KServe, Kubernetes validators)."""
    path = shared_path("tools", "schemas.py")
    spec = importlib.util.spec_from_file_location("shared_schemas", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PG_ADMIN_DSN = "postgresql://postgres:postgres@127.0.0.1:55432"


def port_is_open(host: str, port: int) -> bool:
    """True when something listens on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """A function returning a free loopback TCP port."""

    def _free() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    return _free


@pytest.fixture(scope="session")
def pgstac_database() -> Iterator[Callable[[str], str]]:
    """A factory of fresh pgstac databases on the local PostgreSQL: `make(prefix) -> name`.

    Every database made is dropped at the end of the session. Skips when PostgreSQL is not running.
    """
    if not port_is_open("127.0.0.1", 55432):
        pytest.skip("PostgreSQL is not running on 127.0.0.1:55432: start it with 'make up'")
    import psycopg
    from pypgstac.db import PgstacDB
    from pypgstac.migrate import Migrate

    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{PG_ADMIN_DSN}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        db = PgstacDB(dsn=f"{PG_ADMIN_DSN}/{name}")
        try:
            Migrate(db).run_migration()
        finally:
            db.close()
        return name

    yield make
    with psycopg.connect(f"{PG_ADMIN_DSN}/postgres", autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ServedApp:
    """An ASGI app served by uvicorn on a loopback port in a background thread."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the app on {self.url} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def serve_app() -> Callable[[Any, int], ServedApp]:
    """`serve(app, port) -> ServedApp` (stop it with `.stop()`)."""
    return ServedApp


def _register_tiny_tempcnn(root: Path, name: str) -> dict[str, Any]:
    """An untrained 12 × 54 → 11-class TempCNN registered as `name` under the store `root`."""
    import torch

    from landstack.models.modelfile import build_model
    from landstack.models.registry import register_model

    features = ["B01", "B03", "B04", "B05", "B08", "B09", "B11", "B12", "NDVI", "NDWI", "NDMI", "NBR"]
    metadata: dict[str, Any] = {
        "format_version": 1,
        "name": name,
        "version": "0.0.1",
        "architecture": "TempCNN",
        "hyperparameters": {"filters": 4, "dense": 8},
        "task": "classification",
        "ensemble_size": 1,
        "framework": "pytorch",
        "framework_version": torch.__version__.split("+")[0],
        "input": {
            "features": features,
            "time_steps": 54,
            "dim_order": ["batch", "feature", "time"],
            "norm": {"mean": [0.0] * 12, "std": [1.0] * 12},
        },
        "output": {
            "classes": [{"value": v, "name": f"class {v}"} for v in range(1, 12)],
            "semantics": "class probabilities",
        },
    }
    torch.manual_seed(0)
    register_model(root.as_uri(), build_model(metadata).eval(), metadata)
    return metadata


@pytest.fixture(scope="session")
def register_tiny_tempcnn() -> Callable[[Path, str], dict[str, Any]]:
    """`register(root, name) -> metadata`: a tiny untrained TempCNN in the registry under `root`."""
    return _register_tiny_tempcnn
