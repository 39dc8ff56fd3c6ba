"""Errors raised by the pipeline steps; messages say what to change."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every pipeline error."""


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


class BadInputError(PipelineError, ValueError):
    """A value given to a command or step is invalid: a file, table, date, bbox, CRS, URL or JSON.

    The message names the value and says what to change; the CLI answers it with exit code 2.
    """
