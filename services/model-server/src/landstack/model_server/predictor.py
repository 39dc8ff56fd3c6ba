"""The KServe predictor serving one landstack model (one of several in a process).

Weights load only in `load()`; requests are validated in `preprocess` against the model's own
metadata with the model file's checks (features, time steps, spatial multiple) plus what only a
server has to check (tensor name and dtype, batch limit, NaN) and rejected with `InvalidInput`
(HTTP 400, gRPC INVALID_ARGUMENT); `predict` is tensor in, tensor out (class probabilities for
classifiers, values for regression models), run in a worker thread so the event loop keeps
receiving the next request while the model computes.

Protocols: V2 (REST JSON, REST binary tensors, gRPC) with an `InferRequest`, V1 with
``{"instances": [...]}`` answered ``{"predictions": [...]}``. The answer's dtype follows the
request: FP16 in, FP16 out, unless the request parameter ``output_datatype`` asks for FP32/FP16.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput, ModelNotFound

from landstack.model_server.engine import Engine, input_shape, output_shape
from landstack.model_server.errors import ModelServerError
from landstack.model_server.settings import ModelServerSettings
from landstack.model_server.sources import LoadedModel, ModelRef, load_ref
from landstack.models.errors import InputShapeError
from landstack.models.modelfile import check_input
from landstack.models.runtime import configure_threads, select_device

INPUT_NAME = "input"
OUTPUT_NAME = "output"
_ACCEPTED = {
    "FP32": np.float32,
    "FP16": np.float16,
    "FP64": np.float64,
    "INT16": np.int16,
    "UINT16": np.uint16,
    "UINT8": np.uint8,
}
_ANSWERS = {"FP32": np.float32, "FP16": np.float16}


class UnknownVersionError(ModelServerError, ModelNotFound):
    """A request names a version of a model that this server does not serve (404 / gRPC NOT_FOUND)."""

    def __init__(self, name: str, served: str, received: str) -> None:
        super().__init__(name)
        self.reason = f"model {name!r} has version {served!r} here; received version {received!r}"


class LandstackModel(Model):
    """One registered landstack model behind KServe."""

    def __init__(self, settings: ModelServerSettings, ref: ModelRef | None = None) -> None:
        self.ref = ref or ModelRef(settings.model_name, settings.model_version, settings.model_url)
        super().__init__(self.ref.name)
        self.settings = settings
        self.version = self.ref.version
        self.metadata: dict[str, Any] = {}
        self.engine: Engine | None = None
        self.device = select_device(settings.device)

    def load(self) -> bool:
        """Load the weights once, fold batch norm and move them to the device."""
        configure_threads(self.settings.torch_threads)
        loaded: LoadedModel = load_ref(self.settings, self.ref)
        self.version = loaded.version
        self.metadata = loaded.metadata
        s = self.settings
        self.engine = Engine(
            loaded.module, loaded.metadata, self.device, s.chunk_size, s.fold_batchnorm, s.autocast
        )
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict[str, Any]]:
        return [{"name": INPUT_NAME, "datatype": "FP32", "shape": input_shape(self.metadata)}]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": output_shape(self.metadata)}]

    def describe(self) -> dict[str, Any]:
        """V2 model metadata, with the version and the model's features and classes."""
        out = self.metadata["output"]
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "pytorch",
            "inputs": self.get_input_types(),
            "outputs": self.get_output_types(),
            "parameters": {
                "architecture": self.metadata["architecture"],
                "task": self.metadata.get("task", ""),
                "features": ",".join(self.metadata["input"]["features"]),
                "classes": ",".join(str(c["value"]) for c in out.get("classes", [])),
                "max_batch": self.settings.max_batch,
                "max_payload_bytes": self.settings.max_payload_bytes,
            },
        }

    def _expected_text(self) -> str:
        shape = input_shape(self.metadata)
        return (
            "(" + ", ".join("N" if i == 0 else ("*" if d < 0 else str(d)) for i, d in enumerate(shape)) + ")"
        )

    def _check(self, x: np.ndarray) -> np.ndarray:
        try:
            check_input(self.metadata, x)
        except InputShapeError as e:
            raise InvalidInput(
                f"{e}; send {self._expected_text()} with the features in this order: "
                f"{', '.join(self.metadata['input']['features'])}"
            ) from e
        if x.shape[0] == 0 or x.shape[0] > self.settings.max_batch:
            raise InvalidInput(
                f"model {self.name!r}: batch size must be 1..{self.settings.max_batch}; received "
                f"{x.shape[0]}; split the request"
            )
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            bad = int(np.count_nonzero(~np.isfinite(x)))
            raise InvalidInput(
                f"model {self.name!r}: input contains {bad} NaN or infinite values; "
                "fill nodata (or leave those pixels out) before inference"
            )
        return x if x.dtype in (np.float32, np.float16) else x.astype(np.float32)

    def _tensor(self, request: InferRequest) -> np.ndarray:
        if len(request.inputs) != 1 or request.inputs[0].name != INPUT_NAME:
            got = [i.name for i in request.inputs]
            raise InvalidInput(
                f"model {self.name!r} expects one input tensor named {INPUT_NAME!r}; received {got}"
            )
        tensor = request.inputs[0]
        if tensor.datatype not in _ACCEPTED:
            raise InvalidInput(
                f"input datatype {tensor.datatype} is not supported; send one of {sorted(_ACCEPTED)}"
            )
        try:
            return np.asarray(tensor.as_numpy())
        except (ValueError, TypeError) as e:
            n = int(np.prod(tensor.shape)) if tensor.shape else 0
            raise InvalidInput(
                f"input tensor declares shape {list(tensor.shape)} ({n} values of {tensor.datatype}) but its "
                f"data does not match ({e}); send exactly that many values"
            ) from e

    def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """Validate the request; returns (request or None for V1, array, answer dtype name)."""
        if isinstance(payload, InferRequest):
            if payload.model_version and payload.model_version != self.version:
                raise UnknownVersionError(self.name, self.version, payload.model_version)
            x = self._tensor(payload)
            wanted = _parameter(payload.parameters, "output_datatype").upper()
            if wanted and wanted not in _ANSWERS:
                raise InvalidInput(f"output_datatype {wanted!r} is not supported; ask for FP32 or FP16")
            answer = wanted or ("FP16" if payload.inputs[0].datatype == "FP16" else "FP32")
            return payload, self._check(x), answer
        if isinstance(payload, dict) and "instances" in payload:
            try:
                x = np.asarray(payload["instances"], dtype=np.float32)
            except (ValueError, TypeError) as e:
                raise InvalidInput(
                    f"'instances' must be a list of equally shaped numeric arrays "
                    f"{self._expected_text()}: {e}"
                ) from e
            return None, self._check(x), "FP32"
        raise InvalidInput(
            "send a V2 request (POST /v2/models/{name}/infer with 'inputs') or a V1 request "
            "(POST /v1/models/{name}:predict with 'instances')"
        )

    def validate(self, payload: Any) -> Any:
        # preprocess has validated the request against the model metadata already
        return payload

    async def predict(
        self,
        payload: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse | dict[str, Any]:
        request, x, answer = payload
        assert self.engine is not None
        y = await asyncio.to_thread(self.engine.forward, x)
        if request is None:
            return {"predictions": y.tolist()}
        y = y.astype(_ANSWERS[answer], copy=False)
        out = InferOutput(name=OUTPUT_NAME, shape=list(y.shape), datatype=answer)
        binary = bool(request.from_grpc) or _wants_binary(request) or answer == "FP16"
        out.set_data_from_numpy(y, binary_data=binary)
        return InferResponse(
            response_id=request.id or str(uuid.uuid4()),
            model_name=self.name,
            model_version=self.version,
            infer_outputs=[out],
            # gRPC answers in raw_output_contents: clients read tensors from there only
            use_binary_outputs=bool(request.from_grpc) or binary,
            requested_outputs=None if request.from_grpc else request.request_outputs,
        )


def _wants_binary(request: InferRequest) -> bool:
    for out in request.request_outputs or []:
        if (out.parameters or {}).get("binary_data"):
            return True
    return bool((request.parameters or {}).get("binary_data_output"))


def _parameter(params: Any, key: str) -> str:
    """A request parameter as text, from REST (plain values) or gRPC (InferParameter messages)."""
    if not params or key not in params:
        return ""
    value = params[key]
    if hasattr(value, "WhichOneof"):
        choice = value.WhichOneof("parameter_choice")
        return str(getattr(value, choice)) if choice else ""
    return str(value)
