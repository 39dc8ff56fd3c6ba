"""The KServe ModelServer process serving a registered TempCNN over the open inference protocol."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from landstack.model_server.errors import ModelSourceError
from landstack.model_server.settings import ModelServerSettings
from landstack.models.modelfile import build_model, inference_module
from landstack.models.registry import register_model

pytestmark = pytest.mark.integration

FEATURES = ["B01", "B03", "B04", "B05", "B08", "B09", "B11", "B12", "NDVI", "NDWI", "NDMI", "NBR"]


def _metadata() -> dict[str, Any]:
    return {
        "format_version": 1,
        "name": "tempcnn-test",
        "version": "0.0.1",
        "architecture": "TempCNN",
        "hyperparameters": {"filters": 8, "dense": 16},
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
        "output": {
            "classes": [{"value": v, "name": f"class {v}"} for v in range(1, 12)],
            "semantics": "class probabilities",
        },
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, torch.nn.Module]]:
    root = tmp_path_factory.mktemp("registry")
    torch.manual_seed(0)
    metadata = _metadata()
    model = build_model(metadata).eval()
    register_model(root.as_uri(), model, metadata)
    port = _free_port()
    env = {
        **os.environ,
        "LANDSTACK_MODEL_SERVER_REGISTRY_URL": root.as_uri(),
        "LANDSTACK_MODEL_SERVER_MODEL_NAME": "tempcnn-test",
        "LANDSTACK_MODEL_SERVER_TORCH_THREADS": "1",
    }
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "landstack.model_server", f"--http_port={port}", "--enable_grpc=false"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/v2/models/tempcnn-test/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"model server exited: {log.read_text()[-3000:]}")
            time.sleep(0.5)
        else:
            pytest.fail(f"model server not ready: {log.read_text()[-3000:]}")
        yield url, inference_module(model, metadata)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _x(n: int = 3) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(n, 12, 54)).astype(np.float32)


def test_json_inference_matches_local_forward(served: tuple[str, torch.nn.Module]) -> None:
    url, module = served
    x = _x()
    body = {
        "id": "r1",
        "inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}],
    }
    r = httpx.post(f"{url}/v2/models/tempcnn-test/infer", json=body, timeout=30)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["shape"] == [3, 11] and out["datatype"] == "FP32"
    probs = np.array(out["data"], dtype=np.float32).reshape(3, 11)
    with torch.inference_mode():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_binary_tensor_inference(served: tuple[str, torch.nn.Module]) -> None:
    import tritonclient.http as tc

    url, module = served
    x = _x(5)
    client = tc.InferenceServerClient(url.removeprefix("http://"))
    inp = tc.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    result = client.infer(
        "tempcnn-test", [inp], outputs=[tc.InferRequestedOutput("output", binary_data=True)]
    )
    probs = result.as_numpy("output")
    with torch.inference_mode():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_wrong_shape_is_rejected_with_the_expected_shape(served: tuple[str, torch.nn.Module]) -> None:
    url, _ = served
    x = np.zeros((2, 12, 50), np.float32)
    body = {
        "inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]
    }
    r = httpx.post(f"{url}/v2/models/tempcnn-test/infer", json=body, timeout=30)
    assert r.status_code == 400
    assert "expects input shape (N, 12, 54)" in r.text and "[2, 12, 50]" in r.text


def test_nan_input_is_rejected(served: tuple[str, torch.nn.Module]) -> None:
    url, _ = served
    x = _x(1)
    x[0, 0, 0] = np.nan
    body = {
        "inputs": [
            {
                "name": "input",
                "shape": list(x.shape),
                "datatype": "FP32",
                "data": [None if np.isnan(v) else float(v) for v in x.ravel()],
            }
        ]
    }
    r = httpx.post(f"{url}/v2/models/tempcnn-test/infer", json=body, timeout=30)
    assert r.status_code == 400


def test_model_metadata_and_metrics(served: tuple[str, torch.nn.Module]) -> None:
    url, _ = served
    assert httpx.get(f"{url}/v2/models/tempcnn-test", timeout=10).json()["name"] == "tempcnn-test"
    assert "request_predict" in httpx.get(f"{url}/metrics", timeout=10).text


def test_settings_need_a_model_source() -> None:
    with pytest.raises(ModelSourceError, match="LANDSTACK_MODEL_SERVER_REGISTRY_URL"):
        ModelServerSettings(_env_file=None)


def test_missing_model_fails_loading_with_its_name(tmp_path: Path) -> None:
    from landstack.model_server.predictor import LandstackModel

    model = LandstackModel(ModelServerSettings(model_url=str(tmp_path / "none.pt")))
    with pytest.raises(ModelSourceError, match=r"none\.pt"):
        model.load()
