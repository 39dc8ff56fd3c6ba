"""REST routes the server adds in front of KServe's own: fast binary tensors, versions, payload limit.

- ``POST /v2/models/{name}[/versions/{version}]/infer``: the binary tensor extension is decoded
  straight into numpy views of the body (KServe's own decoder turns every value into a Python
  list first, which costs more than the model); JSON requests go through KServe's data model.
  Both then run through KServe's data plane (pre/predict/post, metrics, encoding).
- ``GET /v2/models/{name}[/versions/{version}][/ready]``: metadata with versions, tensor shapes
  and dtypes; an unknown model or version answers 404 naming what is served.
- Bodies over `max_payload_bytes` answer 413 before they are read (Content-Length) or once read.

These routes are registered before KServe registers its own, so they take precedence.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import ORJSONResponse
from kserve import InferInput, InferRequest
from kserve.errors import InvalidInput
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import RequestedOutput
from kserve.protocol.rest.v2_datamodels import InferenceRequest
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from landstack.model_server.predictor import LandstackModel

HEADER = "inference-header-content-length"


class PayloadLimit:
    """ASGI middleware: 413 for a request whose declared body exceeds the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for key, value in scope.get("headers", []):
                if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                    await too_large(int(value), self.limit)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def too_large(size: int, limit: int) -> ORJSONResponse:
    return ORJSONResponse(
        status_code=413,
        content={
            "error": f"request body of {size} bytes exceeds this server's limit of {limit} bytes; "
            "split the batch into smaller requests"
        },
    )


def _not_found(message: str) -> ORJSONResponse:
    return ORJSONResponse(status_code=404, content={"error": message})


def _decode_binary(body: bytes, json_length: int, model_name: str) -> InferRequest:
    """An InferRequest whose binary inputs are numpy views of `body` (no per-value conversion)."""
    if json_length <= 0 or json_length > len(body):
        raise InvalidInput(
            f"{HEADER} is {json_length} but the body has {len(body)} bytes; send the JSON header length"
        )
    try:
        head = orjson.loads(body[:json_length])
        view = memoryview(body)
        start = json_length
        inputs = []
        for spec in head["inputs"]:
            params = spec.get("parameters") or {}
            inp = InferInput(spec["name"], list(spec["shape"]), spec["datatype"], parameters=params)
            if "binary_data_size" in params:
                end = start + int(params["binary_data_size"])
                if end > len(body):
                    raise InvalidInput(
                        f"input {spec['name']!r} declares {params['binary_data_size']} binary bytes but "
                        f"only {len(body) - start} follow the JSON header"
                    )
                inp._raw_data = view[start:end]
                start = end
            elif spec.get("data") is not None:
                inp.data = spec["data"]
            else:
                raise InvalidInput(f"input {spec['name']!r} has neither 'data' nor 'binary_data_size'")
            inputs.append(inp)
        outputs = [RequestedOutput(o["name"], o.get("parameters")) for o in head.get("outputs") or []]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise InvalidInput(f"malformed binary inference request header: {e}") from e
    return InferRequest(
        model_name=model_name,
        request_id=head.get("id"),
        infer_inputs=inputs,
        parameters=head.get("parameters"),
        request_outputs=outputs or None,
    )


def install(app: FastAPI, dataplane: DataPlane, max_payload_bytes: int) -> None:
    """Add the middleware and routes to KServe's app (before KServe adds its own routes)."""
    app.add_middleware(PayloadLimit, limit=max_payload_bytes)

    def served(name: str, version: str | None) -> LandstackModel | ORJSONResponse:
        model = dataplane.model_registry.get_model(name)
        names = sorted(dataplane.model_registry.get_models())
        if not isinstance(model, LandstackModel):
            return _not_found(f"model {name!r} is not served here; served models: {', '.join(names)}")
        if version is not None and version != model.version:
            return _not_found(
                f"model {name!r} has version {model.version!r} here; received version {version!r}"
            )
        return model

    async def metadata(model_name: str, model_version: str | None = None) -> Any:
        model = served(model_name, model_version)
        return model if isinstance(model, ORJSONResponse) else ORJSONResponse(model.describe())

    async def ready(model_name: str, model_version: str | None = None) -> Any:
        model = served(model_name, model_version)
        if isinstance(model, ORJSONResponse):
            return model
        return ORJSONResponse(
            {"name": model_name, "ready": model.ready}, status_code=200 if model.ready else 503
        )

    async def infer(request: Request, model_name: str, model_version: str | None = None) -> Any:
        model = served(model_name, model_version)
        if isinstance(model, ORJSONResponse):
            return model
        body = await request.body()
        if len(body) > max_payload_bytes:
            return too_large(len(body), max_payload_bytes)
        headers = dict(request.headers)
        if HEADER in headers:
            try:
                json_length = int(headers[HEADER])
            except ValueError as e:
                raise InvalidInput(f"{HEADER} must be an integer; received {headers[HEADER]!r}") from e
            infer_request = _decode_binary(body, json_length, model_name)
        else:
            try:
                parsed = InferenceRequest.model_validate_json(body)
            except ValidationError as e:
                raise InvalidInput(f"malformed V2 inference request: {e}") from e
            infer_request = InferRequest.from_inference_request(parsed, model_name)
        result, response_headers = await dataplane.infer(model_name, infer_request, headers)
        encoded, more = dataplane.encode(model_name, result, headers, {})
        response_headers.update(more)
        response_headers.pop("content-length", None)
        response_headers.pop("content-type", None)
        if isinstance(encoded, bytes):
            return Response(encoded, headers=response_headers, media_type="application/octet-stream")
        return ORJSONResponse(encoded, headers=response_headers)

    for prefix in ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}"):
        app.add_api_route(prefix, metadata, methods=["GET"], include_in_schema=False)
        app.add_api_route(prefix + "/ready", ready, methods=["GET"], include_in_schema=False)
        app.add_api_route(prefix + "/infer", infer, methods=["POST"], include_in_schema=False)
