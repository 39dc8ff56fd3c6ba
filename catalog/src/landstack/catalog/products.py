"""Loading product specs from YAML and looking layers up by collection id."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from landstack.catalog.errors import CatalogError, SpecError, UnknownLayerError
from landstack.catalog.spec import LayerSpec, ProductSpec, check_product

_SPEC_PACKAGE = "landstack.catalog.specs"


def parse_product(raw: dict[str, Any], source: str = "<dict>") -> ProductSpec:
    """Validate one product spec mapping; errors name the product, layer and field."""
    product_id = str(raw.get("id", source))
    try:
        product = ProductSpec.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = list(err["loc"])
        layer = None
        if len(loc) >= 2 and loc[0] == "layers" and isinstance(loc[1], int):
            layers = raw.get("layers") or []
            entry = layers[loc[1]] if loc[1] < len(layers) else {}
            layer = str(entry.get("code", f"#{loc[1]}")) if isinstance(entry, dict) else f"#{loc[1]}"
            loc = loc[2:]
        field = _dotted(loc) or "<spec>"
        problem = err["msg"]
        if err["type"] == "missing":
            problem = f"is required (declare {field} in the spec)"
        raise SpecError(product_id, layer, field, problem) from e
    check_product(product)
    return product


def _dotted(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_spec_file(path: str | Path) -> ProductSpec:
    """Load and validate one product spec YAML file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise CatalogError(f"cannot read product spec {path}: {e}") from e
    if not isinstance(raw, dict):
        raise CatalogError(f"product spec {path} must be a mapping at the top level")
    return parse_product(raw, source=path.stem)


@functools.cache
def load_products() -> tuple[ProductSpec, ...]:
    """Every product shipped with the catalogue, in a stable order."""
    products = []
    for entry in sorted(resources.files(_SPEC_PACKAGE).iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            with resources.as_file(entry) as path:
                products.append(load_spec_file(path))
    ids = [layer.id for p in products for layer in p.layers]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise CatalogError(f"collection ids defined twice across products: {sorted(dupes)}")
    return tuple(products)


def layer_ids() -> list[str]:
    """Every collection id, one per product layer."""
    return [layer.id for p in load_products() for layer in p.layers]


def get_layer(collection_id: str) -> tuple[ProductSpec, LayerSpec]:
    """The product and layer behind a collection id."""
    for product in load_products():
        for layer in product.layers:
            if layer.id == collection_id:
                return product, layer
    raise UnknownLayerError(
        f"no layer with collection id {collection_id!r}; known ids: {', '.join(layer_ids())}"
    )
