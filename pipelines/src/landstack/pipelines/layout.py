"""Where things live in the object store (key prefixes under LANDSTACK_STORE_URL)."""

from __future__ import annotations

CATALOG_PREFIX = "catalog"
COLLECTIONS_PREFIX = f"{CATALOG_PREFIX}/collections"
INSPIRE_PREFIX = f"{CATALOG_PREFIX}/inspire"
PRODUCTS_PREFIX = "products"
MODELS_PREFIX = "models"
