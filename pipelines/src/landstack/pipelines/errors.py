"""Errors raised by the pipeline steps; messages say what to change."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every pipeline error."""


class StoreError(PipelineError):
    """Reading or writing the object store failed."""


class ConfigError(PipelineError):
    """A setting is missing or inconsistent."""
