"""Errors raised by the catalogue."""

from __future__ import annotations


class CatalogError(Exception):
    """Base class of every catalogue error."""


class SpecError(CatalogError):
    """A product spec is invalid; names the product, the layer and the field at fault."""

    def __init__(self, product: str, layer: str | None, field: str, problem: str) -> None:
        self.product = product
        self.layer = layer
        self.field = field
        self.problem = problem
        where = f"product {product!r}"
        if layer is not None:
            where += f", layer {layer!r}"
        super().__init__(f"{where}, field {field!r}: {problem}")


class UnknownLayerError(CatalogError):
    """A collection or layer id that the catalogue does not define."""


class GridError(CatalogError):
    """A bad AOI, grid, CRS or tile code; names the value and what to change."""


class ItemError(CatalogError):
    """A STAC item cannot be built consistently with its collection; names the item, asset and field."""
