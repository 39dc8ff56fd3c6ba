"""Every probe path the rendered chart contains is served by the real app.

The STAC API, the tiler and a model server are started as the chart starts them (the container's
command with the environment the chart gives it, only the database, registry and port pointed at
this machine), and every httpGet probe of their rendered containers is requested.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

PG = ("127.0.0.1", 55432)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _probe_paths(container: dict[str, Any]) -> set[str]:
    return {
        container[p]["httpGet"]["path"]
        for p in ("startupProbe", "readinessProbe", "livenessProbe")
        if "httpGet" in container.get(p, {})
    }


def _plain_env(container: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, str]:
    env = {k: str(v) for k, v in (extra or {}).items()}
    env.update({e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e})
    return env


def _executable(command: list[str]) -> list[str]:
    """The command from the project's environment (the image puts the same scripts on PATH)."""
    exe = shutil.which(command[0], path=str(Path(sys.executable).parent))
    assert exe, f"{command[0]} is not installed in {Path(sys.executable).parent}"
    return [exe, *command[1:]]


@pytest.fixture
def start() -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def _start(command: list[str], env: dict[str, str], ready_url: str, log: Path) -> str:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                _executable(command), env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
            )
        procs.append(proc)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"{command[0]} exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(ready_url, timeout=2).status_code < 500:
                    return ready_url
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        pytest.fail(f"{command[0]} did not answer {ready_url}: {log.read_text()[-3000:]}")

    yield _start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=30)


def _serves_every_probe_path(render: Any, start: Any, log: Path, component: str, prefix: str) -> None:
    """Start the component as the chart renders it (plain env + ConfigMap) against the local
    pgstac, then request every httpGet probe path its container declares."""
    try:
        socket.create_connection(PG, timeout=1).close()
    except OSError:
        pytest.skip("PostgreSQL+pgstac is not running on 127.0.0.1:55432: run 'landstack services up'")
    docs = render()
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith(component))
    deploy = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith(component))
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    paths = _probe_paths(container)
    assert paths, f"the {component} container has no httpGet probes"
    port = _free_port()
    env = _plain_env(container, config["data"])
    env.update(
        {
            f"{prefix}_HOST": "127.0.0.1",
            f"{prefix}_PORT": str(port),
            f"{prefix}_DB_HOST": PG[0],
            f"{prefix}_DB_PORT": str(PG[1]),
            f"{prefix}_DB_USER": "postgres",
            f"{prefix}_DB_PASSWORD": "postgres",
            f"{prefix}_DB_NAME": "landstack",
        }
    )
    env.pop(f"{prefix}_S3_ENDPOINT_URL", None)  # no object store is read by a probe
    base = f"http://127.0.0.1:{port}"
    start(container["command"], env, f"{base}/_mgmt/ping", log)
    for path in sorted(paths):
        r = httpx.get(base + path, timeout=10)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])


def test_stac_api_serves_every_probe_path(render: Any, start: Any, tmp_path: Path) -> None:
    _serves_every_probe_path(render, start, tmp_path / "api.log", "stac-api", "LANDSTACK_API")


def test_tiler_serves_every_probe_path(render: Any, start: Any, tmp_path: Path) -> None:
    _serves_every_probe_path(render, start, tmp_path / "tiler.log", "tiler", "LANDSTACK_TILER")


def test_model_server_serves_every_probe_path(
    render: Any, start: Any, tmp_path: Path, register_tiny_tempcnn: Any
) -> None:
    store = tmp_path / "store"
    meta = register_tiny_tempcnn(store, "tempcnn")
    docs = render(
        "--set", "modelServers.tempcnn.enabled=true",
        "--set", f"modelServers.tempcnn.model.version={meta['version']}",
    )  # fmt: skip
    isvc = next(
        d for d in docs if d["kind"] == "InferenceService" and d["metadata"]["name"].endswith("tempcnn")
    )
    container = isvc["spec"]["predictor"]["containers"][0]
    paths = _probe_paths(container)
    assert paths, "the model server container has no httpGet probes"
    env = _plain_env(container)
    # what KServe's storage initializer leaves in /mnt/models (tests/charts/test_storage_uri.py)
    mount = tmp_path / "mnt-models"
    shutil.copytree(store / "models" / "tempcnn" / meta["version"], mount)
    port = _free_port()
    env.update(
        LANDSTACK_MODEL_SERVER_HTTP_PORT=str(port),
        LANDSTACK_MODEL_SERVER_GRPC_PORT=str(_free_port()),
        LANDSTACK_MODEL_SERVER_TORCH_THREADS="1",
        LANDSTACK_MODEL_SERVER_DEVICE="cpu",
    )
    args = [a.replace("/mnt/models", str(mount)) for a in container.get("args", [])]
    base = f"http://127.0.0.1:{port}"
    start(container["command"] + args, env, f"{base}/v2/health/live", tmp_path / "model-server.log")
    deadline = time.monotonic() + 60
    while httpx.get(base + "/v2/health/ready", timeout=5).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    for path in sorted(paths):
        r = httpx.get(base + path, timeout=10)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
