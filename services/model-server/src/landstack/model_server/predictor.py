"""The KServe predictor serving one landstack model over the open inference protocol (v2).

Weights load only in `load()`; requests are validated in `preprocess` against the model's own
metadata (features, time steps, spatial multiple) and rejected with `InvalidInput`; `predict` is
tensor in, tensor out (class probabilities for classifiers, values for regression models).
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import torch
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput
from torch import nn

from landstack.model_server.errors import ModelSourceError
from landstack.model_server.settings import ModelServerSettings
from landstack.models.errors import ModelError
from landstack.models.modelfile import inference_module, load_model
from landstack.models.registry import load_registered

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


class LandstackModel(Model):
    """One registered landstack model behind KServe."""

    def __init__(self, settings: ModelServerSettings) -> None:
        super().__init__(settings.model_name)
        self.settings = settings
        self.metadata: dict[str, Any] = {}
        self.module: nn.Module | None = None
        self.device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def load(self) -> bool:
        s = self.settings
        try:
            if s.model_url:
                model, metadata = load_model(s.model_url, s.storage_options(s.model_url))
            else:
                assert s.registry_url is not None
                model, metadata = load_registered(
                    s.registry_url, s.model_name, s.model_version, s.storage_options(s.registry_url)
                )
        except ModelError as e:
            raise ModelSourceError(f"cannot load model {s.model_name!r}: {e}") from e
        if s.torch_threads:
            torch.set_num_threads(s.torch_threads)
        self.metadata = metadata
        self.module = inference_module(model, metadata).to(self.device)
        self.ready = True
        return self.ready

    def expected_shape(self) -> tuple[int | None, ...]:
        """Input shape with None for free dimensions: (N, F, T) or (N, C, H, W)."""
        inp = self.metadata["input"]
        n_feat = len(inp["features"])
        if self.metadata["architecture"] == "TempCNN":
            return (None, n_feat, int(inp["time_steps"]))
        return (None, n_feat, None, None)

    def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """Validate the request tensor against the model metadata; returns (request, float32 array)."""
        if not isinstance(payload, InferRequest):
            raise InvalidInput(
                "use the open inference protocol v2: POST /v2/models/{name}/infer with 'inputs'"
            )
        if len(payload.inputs) != 1:
            raise InvalidInput(
                f"send exactly one input tensor named {INPUT_NAME!r}; got {len(payload.inputs)}"
            )
        tensor = payload.inputs[0]
        if tensor.datatype not in _ACCEPTED:
            raise InvalidInput(
                f"input datatype {tensor.datatype} is not supported; send one of {sorted(_ACCEPTED)}"
            )
        x = np.asarray(tensor.as_numpy())
        want = self.expected_shape()
        shape_text = (
            "("
            + ", ".join(
                "N" if d is None and i == 0 else ("*" if d is None else str(d)) for i, d in enumerate(want)
            )
            + ")"
        )
        if x.ndim != len(want) or any(w is not None and w != g for w, g in zip(want, x.shape, strict=False)):
            names = self.metadata["input"]["features"]
            raise InvalidInput(
                f"model {self.name!r} expects input shape {shape_text} (features {', '.join(names)}); "
                f"got {list(x.shape)}"
            )
        if x.shape[0] == 0 or x.shape[0] > self.settings.max_batch:
            raise InvalidInput(f"batch size must be 1..{self.settings.max_batch}; got {x.shape[0]}")
        if self.metadata["architecture"] == "UNet":
            m = 2 ** int(self.metadata["hyperparameters"].get("depth", 3))
            if x.shape[2] % m or x.shape[3] % m:
                raise InvalidInput(
                    f"U-Net input height and width must be multiples of {m}; got {list(x.shape)}"
                )
        x = x.astype(np.float32, copy=False)
        if not np.isfinite(x).all():
            raise InvalidInput("input contains NaN or infinite values; fill nodata before inference")
        return payload, x

    def predict(
        self,
        payload: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse:
        request, x = payload
        assert self.module is not None
        with torch.inference_mode():
            y = self.module(torch.from_numpy(x).to(self.device)).float().cpu().numpy()
        out = InferOutput(name=OUTPUT_NAME, shape=list(y.shape), datatype="FP32")
        out.set_data_from_numpy(y, binary_data=_wants_binary(request))
        return InferResponse(
            response_id=request.id or str(uuid.uuid4()),
            model_name=self.name,
            infer_outputs=[out],
            requested_outputs=request.request_outputs,
        )


def _wants_binary(request: InferRequest) -> bool:
    for out in request.request_outputs or []:
        if (out.parameters or {}).get("binary_data"):
            return True
    return bool((request.parameters or {}).get("binary_data_output"))
