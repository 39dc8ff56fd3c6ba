"""ISO 19139 / INSPIRE metadata records (placeholder replaced below)."""
from landstack.catalog.spec import LayerSpec, ProductSpec


def inspire_record(product: ProductSpec, layer: LayerSpec) -> bytes:
    raise NotImplementedError
