"""The model server starts exactly as the chart's InferenceService starts it, on what KServe's storage
initializer leaves in /mnt/models.

The test plays the storage initializer: it copies the registry version folder the rendered
STORAGE_URI names (``<store>/models/<name>/<version>/``, here a ``file://`` store with a registered
tiny TempCNN) to a temporary folder standing for /mnt/models, starts the container's command with
its args and environment (only /mnt/models and the port pointed at this machine), and asks for
the model's metadata and an inference.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.integration

MOUNT = "/mnt/models"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rendered_predictor(render: Any, store_url: str, version: str) -> dict[str, Any]:
    """The tempcnn InferenceService's kserve-container as the chart renders it for `version`."""
    docs = render(
        "--set", f"global.objectStore.url={store_url}",
        "--set", "modelServers.tempcnn.enabled=true",
        "--set", f"modelServers.tempcnn.model.version={version}",
    )  # fmt: skip
    isvc = next(
        d for d in docs if d["kind"] == "InferenceService" and d["metadata"]["name"].endswith("tempcnn")
    )
    container: dict[str, Any] = isvc["spec"]["predictor"]["containers"][0]
    assert container["name"] == "kserve-container"
    return container


def storage_initializer(storage_uri: str, mount: Path) -> None:
    """What KServe's storage initializer does for a file:// store: copy the version folder."""
    source = Path(urlparse(storage_uri).path)
    assert (source / "model.pt").is_file(), f"{storage_uri} is not a registry version folder"
    shutil.copytree(source, mount)


def test_the_rendered_predictor_serves_the_storage_uri_s_version(
    render: Any, register_tiny_tempcnn: Callable[[Path, str], dict[str, Any]], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    meta = register_tiny_tempcnn(store, "tempcnn")
    container = rendered_predictor(render, store.as_uri(), meta["version"])
    env = {e["name"]: str(e["value"]) for e in container["env"]}
    assert env["STORAGE_URI"] == f"{store.as_uri()}/models/tempcnn/{meta['version']}/"

    mount = tmp_path / "mnt" / "models"
    storage_initializer(env["STORAGE_URI"], mount)
    for path in [mount, *mount.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)  # KServe mounts it read-only

    exe = shutil.which(container["command"][0], path=str(Path(sys.executable).parent))
    assert exe, f"{container['command'][0]} is not an entry point of this environment"
    args = [a.replace(MOUNT, str(mount)) for a in container.get("args", [])]
    assert args == [f"--model_dir={mount}"]
    port = _free_port()
    env.update(
        LANDSTACK_MODEL_SERVER_HTTP_PORT=str(port),
        LANDSTACK_MODEL_SERVER_GRPC_PORT=str(_free_port()),
        LANDSTACK_MODEL_SERVER_TORCH_THREADS="1",
        LANDSTACK_MODEL_SERVER_DEVICE="cpu",
    )
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, *args], env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        described = httpx.get(f"{base}/v2/models/tempcnn", timeout=10).json()
        assert described["versions"] == [meta["version"]]
        assert described["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 12, 54]}]
        x = np.random.default_rng(0).normal(size=(3, 12, 54)).astype(np.float32)
        body = {
            "inputs": [
                {"name": "input", "shape": [3, 12, 54], "datatype": "FP32", "data": x.ravel().tolist()}
            ]
        }
        r = httpx.post(f"{base}/v2/models/tempcnn/infer", json=body, timeout=60)
        assert r.status_code == 200, r.text[:500]
        out = r.json()["outputs"][0]
        probs = np.asarray(out["data"], dtype=np.float64).reshape(out["shape"])
        assert probs.shape == (3, 11) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
        assert r.json()["model_version"] == meta["version"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
