"""Errors of the model server."""

from __future__ import annotations


class ModelServerError(Exception):
    """Base class of model-server errors."""


class ModelSourceError(ModelServerError):
    """No model source is configured, or it cannot be loaded."""
