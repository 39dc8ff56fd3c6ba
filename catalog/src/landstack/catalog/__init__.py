"""landstack.catalog: what the products are.

Specs of every product and layer (codes, class names, colours, dtype, nodata, resolution, grid,
lineage), and the STAC collections and ISO 19139 / INSPIRE records derived from them.
"""

from landstack.catalog.errors import CatalogError, SpecError
from landstack.catalog.products import get_layer, layer_ids, load_products
from landstack.catalog.spec import LayerSpec, ProductSpec

__all__ = [
    "CatalogError",
    "LayerSpec",
    "ProductSpec",
    "SpecError",
    "get_layer",
    "layer_ids",
    "load_products",
]
