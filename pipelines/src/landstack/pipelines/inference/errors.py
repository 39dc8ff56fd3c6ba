"""Errors of the inference client; messages carry the server's own explanation."""

from __future__ import annotations

from landstack.pipelines.errors import PipelineError


class InferenceError(PipelineError):
    """Base class of inference-client errors."""


class InferenceRequestError(InferenceError):
    """The server refused the request (HTTP 4xx, gRPC INVALID_ARGUMENT...): sending it again cannot help."""


class ModelNotServedError(InferenceRequestError):
    """The server does not serve that model or version (HTTP 404, gRPC NOT_FOUND)."""


class InferenceServerError(InferenceError):
    """The server failed or could not be reached (5xx, connection errors) after every retry."""
