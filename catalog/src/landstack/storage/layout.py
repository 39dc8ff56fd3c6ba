"""Where things live in the object store: one prefix per kind of object, under the store's root.

Every reader and writer takes its keys from here, so the layout can change in one place.
"""

from __future__ import annotations

CATALOG = "catalog"
COLLECTIONS = f"{CATALOG}/collections"
INSPIRE = f"{CATALOG}/inspire"
ARCHIVE = "archive"  # Sentinel-2 source archives (synthetic or mirrored)
FEATURES = "features"
SAMPLES = "samples"
PREDICTIONS = "predictions"
INTERMEDIATES = "intermediates"
PRODUCTS = "products"
MODELS = "models"
RELEASES = "releases"  # a model family's served set: copies of several registered versions + manifest
RUNS = "runs"
TRIGGER = "trigger"

PREFIXES = (
    CATALOG,
    COLLECTIONS,
    INSPIRE,
    ARCHIVE,
    FEATURES,
    SAMPLES,
    PREDICTIONS,
    INTERMEDIATES,
    PRODUCTS,
    MODELS,
    RELEASES,
    RUNS,
    TRIGGER,
)


def archive_prefix(collection_id: str) -> str:
    """Key prefix of one Sentinel-2 archive (its collection.json, items/ and truth/)."""
    return f"{ARCHIVE}/{collection_id}"


def samples_key(name: str) -> str:
    """Key of a training table, e.g. ``samples/clcplus-training.parquet``."""
    return f"{SAMPLES}/{name}"


def model_root(name: str) -> str:
    """Key prefix of every version of one registered model."""
    return f"{MODELS}/{name}"


def model_prefix(name: str, version: str) -> str:
    """Key prefix of one registered model version."""
    return f"{model_root(name)}/{version}"


def model_latest_key(name: str) -> str:
    """Key of a model's `latest` pointer ({"version": ...})."""
    return f"{model_root(name)}/latest"


def release_prefix(name: str, version: str) -> str:
    """Key prefix of one release: ``<member>/`` copies of registered versions and the manifest."""
    return f"{RELEASES}/{name}/{version}"


RELEASE_MANIFEST = "release.json"  # inside a release folder, written last


def product_item_key(collection: str, item_id: str) -> str:
    """Key of a product item's JSON (its assets live beside it)."""
    return f"{PRODUCTS}/{collection}/{item_id}/{item_id}.json"
