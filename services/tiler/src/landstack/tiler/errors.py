"""Errors of the tiler service; messages name the bad value and say what to change."""

from __future__ import annotations


class TilerError(Exception):
    """Base class of every tiler error."""


class ConfigError(TilerError):
    """A setting is missing or inconsistent."""


class UnknownLayerError(TilerError):
    """A collection id that is not a layer of the catalogue."""


class AoiError(TilerError):
    """An AOI or a statistics request that cannot be computed as given."""


class ReadError(TilerError):
    """A product raster could not be read."""
