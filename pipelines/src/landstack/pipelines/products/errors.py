"""Errors of the product algorithms; messages name the bad input and say what to change."""

from __future__ import annotations

from landstack.pipelines.errors import PipelineError


class ProductError(PipelineError):
    """Base class of every product post-processing or delivery error."""


class ShapeError(ProductError):
    """Arrays that must share a grid (classes, probabilities, masks) have different shapes."""


class SpecMismatchError(ProductError):
    """Input disagrees with the layer spec in the catalogue (an unknown class code, a missing name)."""


class VectorInputError(ProductError):
    """A correction or mask vector file cannot be read or lacks a field."""


class DeliveryError(ProductError):
    """A COG, attribute table or quicklook cannot be written or does not validate."""
