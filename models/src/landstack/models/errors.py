"""Errors raised by landstack.models; each names the thing that is wrong and what to change."""

from __future__ import annotations


class ModelError(Exception):
    """Base class of every landstack.models error."""


class SamplesError(ModelError):
    """A training table or patch set is missing, unreadable or malformed."""


class ModelFileError(ModelError):
    """A model file cannot be read, or its metadata does not describe a known architecture."""


class InputShapeError(ModelError):
    """An inference input does not match the shape the model was trained on."""


class RegistryError(ModelError):
    """The model registry (object store) cannot be read or written."""


class UnitsError(ModelError):
    """Production units (grid lists or polygons) cannot be read."""


class LabelError(SamplesError):
    """Training labels do not fit the product: unknown class codes, too few classes or samples."""
