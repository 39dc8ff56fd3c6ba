"""The inference client against a real model server (REST and gRPC) and against tiny loopback fakes
that answer 5xx/4xx or count requests in flight (retries, bounded concurrency)."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from landstack.model_server.process import ServedProcess, free_port, serve
from landstack.models.modelfile import inference_module
from landstack.pipelines.inference.client import InferenceClient
from landstack.pipelines.inference.errors import (
    InferenceRequestError,
    InferenceServerError,
    ModelNotServedError,
)

REPO = Path(__file__).resolve().parents[3]


def _tiny_models() -> ModuleType:
    path = REPO / "tests" / "services" / "model_server" / "tiny_models.py"
    spec = importlib.util.spec_from_file_location("tiny_models_for_client", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tm = _tiny_models()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedProcess, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("client-registry")
    models = tm.register_all(root)
    env = {
        "LANDSTACK_MODEL_SERVER_REGISTRY_URL": root.as_uri(),
        "LANDSTACK_MODEL_SERVER_REGISTRY_PREFIX": "",
        "LANDSTACK_MODEL_SERVER_TORCH_THREADS": "1",
        "LANDSTACK_MODEL_SERVER_ENABLE_GRPC": "true",
    }
    with serve(env, root / "server.log") as server:
        yield server, models


def _local(models: dict[str, Any], name: str, x: np.ndarray) -> np.ndarray:
    model, meta = models[name]
    with torch.inference_mode():
        return inference_module(model, meta)(torch.from_numpy(np.asarray(x, np.float32))).numpy()


def _x(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_predict_equals_in_process_torch(served: tuple[ServedProcess, dict[str, Any]], protocol: str) -> None:
    server, models = served
    url = server.url if protocol == "rest" else server.grpc_target
    x = _x((1500, 12, 54))
    # FP32 on the wire, and requests small enough that the batch is split (and put back in order)
    with InferenceClient(url, protocol=protocol, wire_dtype="FP32", max_request_bytes=400_000) as c:
        meta = c.metadata(tm.TEMPCNN)
        assert meta.inputs[0].shape == (-1, 12, 54) and meta.outputs[0].shape == (-1, 11)
        np.testing.assert_allclose(c.predict(tm.TEMPCNN, x), _local(models, tm.TEMPCNN, x), atol=1e-5)
    # FP16 on the wire (the default): the answer is FP16 too, returned as float32
    with InferenceClient(url, protocol=protocol) as c:
        y = c.predict(tm.TEMPCNN, x)
        assert y.dtype == np.float32 and y.shape == (1500, 11)
        expected = _local(models, tm.TEMPCNN, x.astype(np.float16))
        np.testing.assert_allclose(y, expected, atol=2e-3)
        for name, shape in ((tm.UNET, (3, 4, 16, 16)), (tm.IMPERVIOUS, (2, 6, 12, 12))):
            xp = _x(shape)
            expected = _local(models, name, xp.astype(np.float16))
            np.testing.assert_allclose(
                c.predict(name, xp), expected, rtol=2e-3, atol=0.1 if name == tm.UNET else 2e-3
            )


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_refusals_are_not_retried(served: tuple[ServedProcess, dict[str, Any]], protocol: str) -> None:
    server, _ = served
    url = server.url if protocol == "rest" else server.grpc_target
    with InferenceClient(url, protocol=protocol, retries=3, backoff_s=5.0) as c:
        t0 = time.monotonic()
        with pytest.raises(ModelNotServedError, match="nope"):
            c.metadata("nope")
        with pytest.raises(InferenceRequestError, match=r"\(N, 12, 54\)"):
            c.predict(tm.TEMPCNN, _x((2, 12, 50)))
        assert time.monotonic() - t0 < 5.0  # no backoff sleep happened
        with pytest.raises(ModelNotServedError, match=r"9\.9"):
            c.predict(tm.TEMPCNN, _x((2, 12, 54)), version="9.9")
        assert c.predict(tm.TEMPCNN, _x((2, 12, 54)), version="0.0.1").shape == (2, 11)


class _Fake(BaseHTTPRequestHandler):
    """A V2 server for one TempCNN-shaped model that fails as told and counts requests in flight."""

    script: ClassVar[list[int]] = []
    calls = 0
    in_flight = 0
    max_in_flight = 0
    lock = threading.Lock()
    delay_s = 0.0

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        meta = {
            "name": "m",
            "versions": ["1"],
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 2, 3]}],
            "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 2]}],
            "parameters": {"max_batch": 4},
        }
        self._send(200, json.dumps(meta).encode())

    def do_POST(self) -> None:
        cls = type(self)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with cls.lock:
            cls.calls += 1
            status = cls.script.pop(0) if cls.script else 200
            cls.in_flight += 1
            cls.max_in_flight = max(cls.max_in_flight, cls.in_flight)
        try:
            time.sleep(cls.delay_s)
            if status != 200:
                self._send(status, json.dumps({"error": f"told to answer {status}"}).encode())
                return
            head_len = int(self.headers["Inference-Header-Content-Length"])
            head = json.loads(body[:head_len])
            n = head["inputs"][0]["shape"][0]
            x = np.frombuffer(body[head_len:], np.float16).reshape(n, 2, 3)
            y = x.sum(axis=2).astype(np.float16)  # (n, 2): easy to check
            out = {
                "outputs": [
                    {
                        "name": "output",
                        "datatype": "FP16",
                        "shape": [n, 2],
                        "parameters": {"binary_data_size": y.nbytes},
                    }
                ]
            }
            head_out = json.dumps(out).encode()
            self._send(200, head_out + y.tobytes(), {"Inference-Header-Content-Length": str(len(head_out))})
        finally:
            with cls.lock:
                cls.in_flight -= 1


@pytest.fixture
def fake() -> Iterator[tuple[str, type[_Fake]]]:
    state = {"script": [], "calls": 0, "in_flight": 0, "max_in_flight": 0, "lock": threading.Lock()}
    handler: type[_Fake] = type("Handler", (_Fake,), state)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_5xx_is_retried_with_backoff(fake: tuple[str, type[_Fake]]) -> None:
    url, handler = fake
    handler.script = [503, 500]
    x = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    with InferenceClient(url, retries=3, backoff_s=0.05) as c:
        y = c.predict("m", x)
    assert handler.calls == 3
    np.testing.assert_allclose(y, x.sum(axis=2))


def test_4xx_is_not_retried(fake: tuple[str, type[_Fake]]) -> None:
    url, handler = fake
    handler.script = [400, 200]
    with (
        InferenceClient(url, retries=3, backoff_s=0.05) as c,
        pytest.raises(InferenceRequestError, match="400"),
    ):
        c.predict("m", np.zeros((2, 2, 3), np.float32))
    assert handler.calls == 1


def test_5xx_gives_up_after_the_retries(fake: tuple[str, type[_Fake]]) -> None:
    url, handler = fake
    handler.script = [502] * 10
    with (
        InferenceClient(url, retries=2, backoff_s=0.01) as c,
        pytest.raises(InferenceServerError, match="3 attempts"),
    ):
        c.predict("m", np.zeros((1, 2, 3), np.float32))
    assert handler.calls == 3


def test_connection_errors_are_retried_then_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with (
        InferenceClient(url, retries=2, backoff_s=0.01) as c,
        pytest.raises(InferenceServerError, match="3 attempts"),
    ):
        c.metadata("m")


def test_batches_split_under_the_limits_with_bounded_concurrency(fake: tuple[str, type[_Fake]]) -> None:
    url, handler = fake
    handler.delay_s = 0.2
    x = np.random.default_rng(0).normal(size=(22, 2, 3)).astype(np.float32)
    with InferenceClient(url, concurrency=3) as c:
        y = c.predict("m", x)
    assert handler.calls == 6  # max_batch 4 from the metadata: 22 rows -> 6 requests
    assert handler.max_in_flight == 3
    np.testing.assert_allclose(y, x.astype(np.float16).sum(axis=2, dtype=np.float16), atol=1e-2)
