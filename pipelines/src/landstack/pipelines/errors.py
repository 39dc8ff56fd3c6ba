"""Errors raised by the pipeline steps; messages say what to change."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every pipeline error."""


class StoreError(PipelineError):
    """Reading or writing the object store failed."""


class ConfigError(PipelineError):
    """A setting is missing or inconsistent."""


class EmptySearchError(PipelineError):
    """A STAC search found no usable item for the AOI and time range."""


class MissingAssetError(PipelineError):
    """A STAC item lacks a band or SCL asset the step needs."""


class AssetReadError(PipelineError):
    """A raster asset (COG) is corrupt or unreachable."""


class FeatureError(PipelineError):
    """Input to the feature computation is inconsistent (bands, time range, grid)."""


class SampleError(PipelineError):
    """Training samples cannot be extracted (points outside the stack, missing columns)."""
