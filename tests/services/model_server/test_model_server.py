"""The KServe ModelServer process hosting three registered models over V2 REST/gRPC and V1.

One server process per module (three tiny models: TempCNN, U-Net, impervious CNN) answers
independent clients: raw HTTP (httpx), tritonclient.http (binary tensors) and tritonclient.grpc in
a subprocess (it cannot be imported in a process that imported KServe).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from landstack.model_server.process import ServedProcess, serve
from landstack.models.modelfile import inference_module

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).parent))
import tiny_models as tm  # noqa: E402

MAX_BATCH = 256
MAX_PAYLOAD = 4 * 2**20


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[torch.nn.Module, Any]]]:
    root = tmp_path_factory.mktemp("registry")
    return root, tm.register_all(root)


@pytest.fixture(scope="module")
def server(registry: tuple[Path, dict[str, Any]]) -> Iterator[ServedProcess]:
    root, _ = registry
    env = {
        "LANDSTACK_MODEL_SERVER_REGISTRY_URL": root.as_uri(),
        "LANDSTACK_MODEL_SERVER_MODELS": f"{tm.TEMPCNN},{tm.UNET}:0.0.1",
        "LANDSTACK_MODEL_SERVER_REGISTRY_PREFIX": "impervious-",
        "LANDSTACK_MODEL_SERVER_TORCH_THREADS": "1",
        "LANDSTACK_MODEL_SERVER_MAX_BATCH": str(MAX_BATCH),
        "LANDSTACK_MODEL_SERVER_MAX_PAYLOAD_BYTES": str(MAX_PAYLOAD),
        "LANDSTACK_MODEL_SERVER_ENABLE_GRPC": "true",
    }
    with serve(env, root / "server.log") as served:
        yield served


def _local(registry: tuple[Path, dict[str, Any]], name: str, x: np.ndarray) -> np.ndarray:
    model, meta = registry[1][name]
    with torch.inference_mode():
        return inference_module(model, meta)(torch.from_numpy(x.astype(np.float32))).numpy()


def _x(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _json_body(x: np.ndarray, name: str = "input", datatype: str = "FP32") -> dict[str, Any]:
    return {
        "inputs": [{"name": name, "shape": list(x.shape), "datatype": datatype, "data": x.ravel().tolist()}]
    }


def test_lists_every_model_with_shapes_from_the_metadata(server: ServedProcess) -> None:
    names = httpx.get(f"{server.url}/v2/models", timeout=10).json()["models"]
    assert sorted(names) == sorted([tm.TEMPCNN, tm.UNET, tm.IMPERVIOUS])
    meta = httpx.get(f"{server.url}/v2/models/{tm.TEMPCNN}", timeout=10).json()
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 12, 54]}]
    assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 11]}]
    assert meta["versions"] == ["0.0.1"]
    unet = httpx.get(f"{server.url}/v2/models/{tm.UNET}/versions/0.0.1", timeout=10).json()
    assert unet["inputs"][0]["shape"] == [-1, 4, -1, -1] and unet["outputs"][0]["shape"] == [-1, 1, -1, -1]
    imp = httpx.get(f"{server.url}/v2/models/{tm.IMPERVIOUS}", timeout=10).json()
    assert imp["inputs"][0]["shape"] == [-1, 6, -1, -1] and imp["outputs"][0]["shape"] == [-1, 4, -1, -1]


def test_health_and_metrics(server: ServedProcess) -> None:
    assert httpx.get(f"{server.url}/v2/health/live", timeout=10).status_code == 200
    assert httpx.get(f"{server.url}/v2/health/ready", timeout=10).status_code == 200
    assert httpx.get(f"{server.url}/v2/models/{tm.UNET}/ready", timeout=10).json()["ready"] is True
    assert httpx.get(f"{server.url}/v1/models/{tm.TEMPCNN}", timeout=10).json()["ready"] is True
    x = _x((2, 12, 54))
    httpx.post(f"{server.url}/v2/models/{tm.TEMPCNN}/infer", json=_json_body(x), timeout=30)
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert "request_predict_seconds" in text and f'model_name="{tm.TEMPCNN}"' in text


def test_v2_json_matches_torch(server: ServedProcess, registry: Any) -> None:
    x = _x((3, 12, 54))
    r = httpx.post(
        f"{server.url}/v2/models/{tm.TEMPCNN}/infer", json={"id": "r1", **_json_body(x)}, timeout=30
    )
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["shape"] == [3, 11] and out["datatype"] == "FP32" and r.json()["id"] == "r1"
    probs = np.array(out["data"], np.float32).reshape(3, 11)
    np.testing.assert_allclose(probs, _local(registry, tm.TEMPCNN, x), atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_v2_binary_with_tritonclient_http_in_flight(server: ServedProcess, registry: Any) -> None:
    import tritonclient.http as tc

    client = tc.InferenceServerClient(f"127.0.0.1:{server.http_port}", concurrency=4)
    try:
        pending = []
        batches = [_x((40, 12, 54), seed=s) for s in range(4)]
        for x in batches:
            inp = tc.InferInput("input", list(x.shape), "FP32")
            inp.set_data_from_numpy(x, binary_data=True)
            out = tc.InferRequestedOutput("output", binary_data=True)
            pending.append(client.async_infer(tm.TEMPCNN, [inp], outputs=[out]))
        for x, req in zip(batches, pending, strict=True):
            np.testing.assert_allclose(
                req.get_result().as_numpy("output"), _local(registry, tm.TEMPCNN, x), atol=1e-5
            )
        for name, shape in ((tm.UNET, (2, 4, 16, 16)), (tm.IMPERVIOUS, (1, 6, 20, 12))):
            x = _x(shape)
            inp = tc.InferInput("input", list(x.shape), "FP32")
            inp.set_data_from_numpy(x, binary_data=True)
            res = client.infer(name, [inp], outputs=[tc.InferRequestedOutput("output", binary_data=True)])
            np.testing.assert_allclose(
                res.as_numpy("output"), _local(registry, name, x), rtol=1e-4, atol=1e-4
            )
        meta = client.get_model_metadata(tm.TEMPCNN)
        assert meta["inputs"][0]["shape"] == [-1, 12, 54]
    finally:
        client.close()


def test_fp16_in_fp16_out_and_requested_fp32(server: ServedProcess, registry: Any) -> None:
    import tritonclient.http as tc

    x = _x((16, 12, 54)).astype(np.float16)
    expected = _local(registry, tm.TEMPCNN, x.astype(np.float32))
    client = tc.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    try:
        inp = tc.InferInput("input", list(x.shape), "FP16")
        inp.set_data_from_numpy(x, binary_data=True)
        res = client.infer(tm.TEMPCNN, [inp], outputs=[tc.InferRequestedOutput("output", binary_data=True)])
        y = res.as_numpy("output")
        assert y.dtype == np.float16 and res.get_output("output")["datatype"] == "FP16"
        np.testing.assert_allclose(y.astype(np.float32), expected, atol=2e-3)
        res32 = client.infer(
            tm.TEMPCNN,
            [inp],
            outputs=[tc.InferRequestedOutput("output", binary_data=True)],
            parameters={"output_datatype": "FP32"},
        )
        assert res32.as_numpy("output").dtype == np.float32
        np.testing.assert_allclose(res32.as_numpy("output"), expected, atol=1e-5)
    finally:
        client.close()


_GRPC_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tritonclient.grpc as g
    target, model, out_dir = sys.argv[1:4]
    c = g.InferenceServerClient(target)
    meta = c.get_model_metadata(model, as_json=True)
    rows = {}
    for dtype in ("FP32", "FP16"):
        x = np.load(f"{out_dir}/x.npy").astype(np.float16 if dtype == "FP16" else np.float32)
        inp = g.InferInput("input", list(x.shape), dtype)
        inp.set_data_from_numpy(x)
        res = c.infer(model, [inp], outputs=[g.InferRequestedOutput("output")])
        y = res.as_numpy("output")
        np.save(f"{out_dir}/{dtype}.npy", y)
        rows[dtype] = str(y.dtype)
    try:
        bad = np.zeros((2, 12, 50), np.float32)
        inp = g.InferInput("input", list(bad.shape), "FP32")
        inp.set_data_from_numpy(bad)
        c.infer(model, [inp])
        rows["bad"] = "accepted"
    except g.InferenceServerException as e:
        rows["bad"] = [e.status(), e.message()]
    print(json.dumps({"meta": meta, "dtypes": rows}))
    """
)


def test_v2_grpc_with_tritonclient_grpc_in_a_subprocess(
    server: ServedProcess, registry: Any, tmp_path: Path
) -> None:
    x = _x((8, 12, 54))
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "grpc_client.py"
    script.write_text(_GRPC_SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script), server.grpc_target, tm.TEMPCNN, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["meta"]["inputs"][0]["shape"] == ["-1", "12", "54"]
    assert result["dtypes"]["FP32"] == "float32" and result["dtypes"]["FP16"] == "float16"
    y32 = np.load(tmp_path / "FP32.npy")
    assert y32.shape == (8, 11)
    np.testing.assert_allclose(y32, _local(registry, tm.TEMPCNN, x), atol=1e-5)
    y16 = np.load(tmp_path / "FP16.npy").astype(np.float32)
    np.testing.assert_allclose(
        y16, _local(registry, tm.TEMPCNN, x.astype(np.float16).astype(np.float32)), atol=2e-3
    )
    status, message = result["dtypes"]["bad"]
    assert "INVALID_ARGUMENT" in status and "(N, 12, 54)" in message and "(2, 12, 50)" in message


def test_v1_instances(server: ServedProcess, registry: Any) -> None:
    x = _x((2, 12, 54))
    r = httpx.post(f"{server.url}/v1/models/{tm.TEMPCNN}:predict", json={"instances": x.tolist()}, timeout=30)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.array(r.json()["predictions"]), _local(registry, tm.TEMPCNN, x), atol=1e-5)


def test_versioned_infer_route(server: ServedProcess, registry: Any) -> None:
    x = _x((1, 4, 8, 8))
    r = httpx.post(f"{server.url}/v2/models/{tm.UNET}/versions/0.0.1/infer", json=_json_body(x), timeout=30)
    assert r.status_code == 200, r.text
    y = np.array(r.json()["outputs"][0]["data"], np.float32).reshape(1, 1, 8, 8)
    np.testing.assert_allclose(y, _local(registry, tm.UNET, x), rtol=1e-4, atol=1e-3)


def _bad_requests() -> list[tuple[str, str, Any, dict[str, str], int, list[str]]]:
    """(id, path, body, headers, status, texts the error must contain)."""
    nan = _x((1, 12, 54))
    nan[0, 0, 0] = np.nan
    nan_body = _json_body(nan)
    nan_body["inputs"][0]["data"] = [None if np.isnan(v) else float(v) for v in nan.ravel()]
    t = tm.TEMPCNN
    return [
        (
            "time steps",
            f"/v2/models/{t}/infer",
            _json_body(_x((2, 12, 50))),
            {},
            400,
            ["(N, 12, 54)", "(2, 12, 50)"],
        ),
        (
            "features",
            f"/v2/models/{t}/infer",
            _json_body(_x((2, 10, 54))),
            {},
            400,
            ["(N, 12, 54)", "(2, 10, 54)"],
        ),
        ("rank", f"/v2/models/{t}/infer", _json_body(_x((12, 54))), {}, 400, ["(N, 12, 54)", "(12, 54)"]),
        (
            "unet multiple",
            f"/v2/models/{tm.UNET}/infer",
            _json_body(_x((1, 4, 10, 8))),
            {},
            400,
            ["multiples of 4"],
        ),
        (
            "dtype",
            f"/v2/models/{t}/infer",
            _json_body(_x((1, 12, 54)).astype(bool), datatype="BOOL"),
            {},
            400,
            ["BOOL"],
        ),
        (
            "name",
            f"/v2/models/{t}/infer",
            _json_body(_x((1, 12, 54)), name="x"),
            {},
            400,
            ["'input'", "['x']"],
        ),
        ("nan", f"/v2/models/{t}/infer", nan_body, {}, 400, ["NaN"]),
        (
            "batch",
            f"/v2/models/{t}/infer",
            None,
            {"binary": "batch"},
            400,
            [f"1..{MAX_BATCH}", str(MAX_BATCH + 1)],
        ),
        ("payload", f"/v2/models/{t}/infer", None, {"binary": "payload"}, 413, [str(MAX_PAYLOAD)]),
        ("model", "/v2/models/nope/infer", _json_body(_x((1, 12, 54))), {}, 404, ["'nope'", t]),
        (
            "version",
            f"/v2/models/{t}/versions/9.9/infer",
            _json_body(_x((1, 12, 54))),
            {},
            404,
            ["0.0.1", "9.9"],
        ),
        ("v1 model", "/v1/models/nope:predict", {"instances": [[0.0]]}, {}, 404, ["nope"]),
        (
            "v1 shape",
            f"/v1/models/{t}:predict",
            {"instances": [[0.0, 1.0]]},
            {},
            400,
            ["(N, 12, 54)", "(1, 2)"],
        ),
        ("declared", f"/v2/models/{t}/infer", None, {"binary": "declared"}, 400, ["[4, 12, 54]"]),
    ]


def _binary(kind: str) -> tuple[bytes, dict[str, str]]:
    if kind == "batch":
        x = np.zeros((MAX_BATCH + 1, 12, 54), np.float16)
    elif kind == "payload":
        x = np.zeros((MAX_BATCH, 12, 54 * 8), np.float32)  # over MAX_PAYLOAD bytes
    else:  # a shape that does not match the bytes sent
        x = np.zeros((3, 12, 54), np.float32)
    shape = [4, 12, 54] if kind == "declared" else list(x.shape)
    dtype = "FP16" if x.dtype == np.float16 else "FP32"
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": shape,
                    "datatype": dtype,
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ]
        }
    ).encode()
    return head + x.tobytes(), {"Inference-Header-Content-Length": str(len(head))}


@pytest.mark.parametrize("case", _bad_requests(), ids=lambda c: c[0])
def test_bad_request_then_a_valid_one(server: ServedProcess, case: tuple[Any, ...]) -> None:
    _, path, body, headers, status, texts = case
    if "binary" in headers:
        content, hdrs = _binary(headers["binary"])
        r = httpx.post(f"{server.url}{path}", content=content, headers=hdrs, timeout=60)
    else:
        r = httpx.post(f"{server.url}{path}", json=body, timeout=60)
    assert r.status_code == status, r.text
    for t in texts:
        assert t in r.text, r.text
    ok = httpx.post(
        f"{server.url}/v2/models/{tm.TEMPCNN}/infer", json=_json_body(_x((1, 12, 54))), timeout=30
    )
    assert ok.status_code == 200, ok.text
