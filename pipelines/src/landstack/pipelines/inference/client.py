"""A client for landstack model servers: the open inference protocol v2 over binary REST or gRPC.

`InferenceClient(url).predict(model_name, array) -> array` is all the predict step needs: the
array is split into requests that fit the server's batch and payload limits, sent in FP16 (half
the bytes of FP32; the server answers in the same dtype) with several requests in flight at once
over reused connections, and the answers are put back together in order as float32.

Failures: connection errors and 5xx (gRPC UNAVAILABLE/INTERNAL/UNKNOWN) are retried with
exponential backoff; a 4xx (gRPC INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED...) is raised at
once with the server's message, since sending the same request again cannot help.

The gRPC messages come from this package's own copy of the protocol (`predict_v2.proto`), so the
client never imports KServe or tritonclient.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx
import numpy as np

from landstack.pipelines.inference.errors import (
    InferenceError,
    InferenceRequestError,
    InferenceServerError,
    ModelNotServedError,
)

log = logging.getLogger(__name__)

_DTYPES = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64}
_FP16_MAX = 65504.0
_HEADER = "Inference-Header-Content-Length"
_GRPC_SERVICE = "/inference.GRPCInferenceService/"
_HEAD_ROOM = 64 * 1024  # JSON header / protobuf framing next to the tensor bytes
T = TypeVar("T")


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor of a served model; -1 marks a free dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ServedModel:
    """A model's metadata as the server reports it."""

    name: str
    versions: tuple[str, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def max_batch(self) -> int | None:
        value = self.parameters.get("max_batch")
        return int(value) if value is not None else None

    @property
    def max_payload_bytes(self) -> int | None:
        value = self.parameters.get("max_payload_bytes")
        return int(value) if value is not None else None


class _RetryableError(Exception):
    """A failure worth retrying (connection error, 5xx); carries the message for the final error."""


@dataclass
class ClientOptions:
    """How the client talks to a server."""

    protocol: Literal["rest", "grpc"] = "rest"
    timeout_s: float = 600.0
    retries: int = 4
    backoff_s: float = 0.5
    concurrency: int = 4
    max_request_bytes: int = 64 * 2**20
    wire_dtype: Literal["FP16", "FP32"] = "FP16"
    max_batch: int | None = None  # when the server does not report one (gRPC metadata has no parameters)


class InferenceClient:
    """Predictions from a model server (V2 binary REST or gRPC) as numpy arrays."""

    def __init__(self, url: str, options: ClientOptions | None = None, **overrides: Any) -> None:
        """`url`: ``http://host:port`` for REST, ``host:port`` (or ``grpc://host:port``) for gRPC."""
        self.options = options or ClientOptions()
        for key, value in overrides.items():
            if not hasattr(self.options, key):
                raise InferenceError(f"unknown client option {key!r}; use one of {list(vars(self.options))}")
            setattr(self.options, key, value)
        o = self.options
        if o.protocol not in ("rest", "grpc"):
            raise InferenceError(f"protocol {o.protocol!r} is not supported; use 'rest' or 'grpc'")
        if o.wire_dtype not in ("FP16", "FP32"):
            raise InferenceError(f"wire dtype {o.wire_dtype!r} is not supported; use FP16 or FP32")
        self.url = url.rstrip("/")
        self._metadata: dict[str, ServedModel] = {}
        self._pool = ThreadPoolExecutor(max_workers=max(1, o.concurrency), thread_name_prefix="infer")
        self._http: httpx.Client | None = None
        self._channel: Any = None
        if o.protocol == "rest":
            if not self.url.startswith(("http://", "https://")):
                raise InferenceError(f"REST url {url!r} must start with http:// or https://")
            limits = httpx.Limits(max_connections=o.concurrency, max_keepalive_connections=o.concurrency)
            self._http = httpx.Client(base_url=self.url, timeout=o.timeout_s, limits=limits)
        else:
            import grpc

            target = self.url.removeprefix("grpc://")
            size = o.max_request_bytes + _HEAD_ROOM
            self._channel = grpc.insecure_channel(
                target,
                options=[("grpc.max_send_message_length", size), ("grpc.max_receive_message_length", -1)],
            )

    # -- public ------------------------------------------------------------------------------

    def metadata(self, model_name: str) -> ServedModel:
        """The served model's tensors, versions and limits (cached per client)."""
        if model_name not in self._metadata:
            fetch = self._rest_metadata if self._http is not None else self._grpc_metadata
            self._metadata[model_name] = self._with_retries(
                lambda: fetch(model_name), f"metadata of {model_name!r}"
            )
        return self._metadata[model_name]

    def predict(self, model_name: str, x: np.ndarray, version: str | None = None) -> np.ndarray:
        """Model output (float32) for the batch `x` (first axis = samples), in order."""
        meta = self.metadata(model_name)
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[0] == 0:
            raise InferenceRequestError(
                f"model {model_name!r}: send at least one sample; received shape {x.shape}"
            )
        rows = self._rows_per_request(meta, x)
        starts = list(range(0, x.shape[0], rows))
        parts = list(self._pool.map(lambda s: self._predict_one(meta, x[s : s + rows], version), starts))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._http is not None:
            self._http.close()
        if self._channel is not None:
            self._channel.close()

    def __enter__(self) -> InferenceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- batching ----------------------------------------------------------------------------

    def _rows_per_request(self, meta: ServedModel, x: np.ndarray) -> int:
        o = self.options
        limit = o.max_request_bytes
        if meta.max_payload_bytes:
            limit = min(limit, meta.max_payload_bytes)
        row_bytes = max(1, int(np.prod(x.shape[1:])) * np.dtype(_DTYPES[o.wire_dtype]).itemsize)
        rows = (limit - _HEAD_ROOM) // row_bytes
        if rows < 1:
            raise InferenceRequestError(
                f"model {meta.name!r}: one sample of shape {list(x.shape[1:])} takes {row_bytes} bytes, "
                f"over the request limit of {limit} bytes; send smaller patches"
            )
        max_batch = meta.max_batch or o.max_batch
        if max_batch:
            rows = min(rows, max_batch)
        # enough requests to keep every connection busy, but no tiny ones
        spread = math.ceil(x.shape[0] / max(1, o.concurrency))
        return max(1, min(rows, max(spread, 256)))

    def _wire(self, x: np.ndarray) -> tuple[np.ndarray, str]:
        if self.options.wire_dtype == "FP16":
            finite = x[np.isfinite(x)] if x.dtype.kind == "f" else x
            if finite.size == 0 or float(np.abs(finite).max()) <= _FP16_MAX:
                return np.ascontiguousarray(x, np.float16), "FP16"
            log.debug("values beyond the FP16 range: sending this batch as FP32")
        return np.ascontiguousarray(x, np.float32), "FP32"

    def _predict_one(self, meta: ServedModel, x: np.ndarray, version: str | None) -> np.ndarray:
        wire, dtype = self._wire(x)
        send = self._rest_infer if self._http is not None else self._grpc_infer
        y = self._with_retries(lambda: send(meta, wire, dtype, version), f"inference on {meta.name!r}")
        return y.astype(np.float32, copy=False)

    def _with_retries(self, call: Callable[[], T], what: str) -> T:
        o = self.options
        for attempt in range(o.retries + 1):
            try:
                return call()
            except _RetryableError as e:
                if attempt == o.retries:
                    raise InferenceServerError(
                        f"{what} at {self.url} failed after {o.retries + 1} attempts: {e}; check the server"
                    ) from e
                delay = min(30.0, o.backoff_s * 2**attempt)
                log.warning("%s failed (%s); retrying in %.1f s", what, e, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    # -- REST --------------------------------------------------------------------------------

    def _rest_call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        assert self._http is not None
        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise _RetryableError(f"{type(e).__name__}: {e}") from e
        if r.status_code >= 500:
            raise _RetryableError(f"HTTP {r.status_code}: {r.text[:500]}")
        if r.status_code == 404:
            raise ModelNotServedError(f"{self.url}{path}: {_error_text(r)}")
        if r.status_code >= 400:
            raise InferenceRequestError(f"{self.url}{path} answered {r.status_code}: {_error_text(r)}")
        return r

    def _rest_metadata(self, model_name: str) -> ServedModel:
        doc = self._rest_call("GET", f"/v2/models/{model_name}").json()
        return _served(doc)

    def _rest_infer(self, meta: ServedModel, x: np.ndarray, dtype: str, version: str | None) -> np.ndarray:
        out_name = meta.outputs[0].name
        head = {
            "inputs": [
                {
                    "name": meta.inputs[0].name,
                    "shape": list(x.shape),
                    "datatype": dtype,
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "outputs": [{"name": out_name, "parameters": {"binary_data": True}}],
            "parameters": {"output_datatype": dtype},
        }
        head_bytes = json.dumps(head).encode()
        path = f"/v2/models/{meta.name}" + (f"/versions/{version}" if version else "") + "/infer"
        r = self._rest_call(
            "POST",
            path,
            content=head_bytes + x.tobytes(),
            headers={_HEADER: str(len(head_bytes)), "Content-Type": "application/octet-stream"},
        )
        return _rest_output(r, out_name)

    # -- gRPC --------------------------------------------------------------------------------

    def _grpc_call(self, method: str, request: Any, response_type: Any) -> Any:
        import grpc

        stub = self._channel.unary_unary(
            _GRPC_SERVICE + method,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        try:
            return stub(request, timeout=self.options.timeout_s)
        except grpc.RpcError as e:
            code, details = e.code(), e.details()
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                raise _RetryableError(f"gRPC {code.name}: {details}") from e
            if code == grpc.StatusCode.NOT_FOUND:
                raise ModelNotServedError(f"{self.url} {method}: {details}") from e
            raise InferenceRequestError(f"{self.url} {method} answered {code.name}: {details}") from e

    def _grpc_metadata(self, model_name: str) -> ServedModel:
        from landstack.pipelines.inference import predict_v2_pb2 as pb

        res = self._grpc_call(
            "ModelMetadata", pb.ModelMetadataRequest(name=model_name), pb.ModelMetadataResponse
        )
        doc = {
            "name": res.name,
            "versions": list(res.versions),
            "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in res.inputs],
            "outputs": [
                {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in res.outputs
            ],
        }
        return _served(doc)

    def _grpc_infer(self, meta: ServedModel, x: np.ndarray, dtype: str, version: str | None) -> np.ndarray:
        from landstack.pipelines.inference import predict_v2_pb2 as pb

        req = pb.ModelInferRequest(model_name=meta.name, model_version=version or "")
        tensor = req.inputs.add()
        tensor.name, tensor.datatype = meta.inputs[0].name, dtype
        tensor.shape.extend(x.shape)
        req.outputs.add().name = meta.outputs[0].name
        req.parameters["output_datatype"].string_param = dtype
        req.raw_input_contents.append(x.tobytes())
        res = self._grpc_call("ModelInfer", req, pb.ModelInferResponse)
        if not res.outputs or not res.raw_output_contents:
            raise InferenceServerError(f"{self.url}: model {meta.name!r} answered no output tensor")
        out = res.outputs[0]
        if out.datatype not in _DTYPES:
            raise InferenceServerError(f"{self.url}: unexpected output datatype {out.datatype}")
        return np.frombuffer(res.raw_output_contents[0], dtype=_DTYPES[out.datatype]).reshape(list(out.shape))


def _served(doc: dict[str, Any]) -> ServedModel:
    def specs(key: str) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(t["name"], t["datatype"], tuple(int(d) for d in t["shape"])) for t in doc.get(key, [])
        )

    inputs, outputs = specs("inputs"), specs("outputs")
    if not inputs or not outputs:
        raise InferenceError(
            f"model {doc.get('name')!r} reports no input/output tensors; is it a landstack model server?"
        )
    return ServedModel(
        str(doc["name"]), tuple(doc.get("versions") or ()), inputs, outputs, dict(doc.get("parameters") or {})
    )


def _error_text(r: httpx.Response) -> str:
    try:
        return str(r.json().get("error", r.text))
    except (ValueError, AttributeError):
        return r.text[:1000]


def _rest_output(r: httpx.Response, name: str) -> np.ndarray:
    body = r.content
    json_len = r.headers.get(_HEADER)
    head = json.loads(body[: int(json_len)] if json_len else body)
    offset = int(json_len) if json_len else 0
    for out in head.get("outputs", []):
        params = out.get("parameters") or {}
        dtype = _DTYPES.get(out["datatype"])
        if dtype is None:
            raise InferenceServerError(f"unexpected output datatype {out['datatype']}")
        if "binary_data_size" in params:
            size = int(params["binary_data_size"])
            data = np.frombuffer(body, dtype=dtype, count=size // np.dtype(dtype).itemsize, offset=offset)
            offset += size
        else:
            data = np.asarray(out["data"], dtype=dtype)
        if out["name"] == name:
            return data.reshape(out["shape"])
    raise InferenceServerError(f"the answer has no output tensor {name!r}")
