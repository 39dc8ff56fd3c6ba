"""Writing the whole catalogue (collections and INSPIRE records) to a folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from landstack.catalog.errors import CatalogError
from landstack.catalog.inspire import inspire_record
from landstack.catalog.products import load_products
from landstack.catalog.stac import collection_for


@dataclass
class BuildResult:
    collections: list[Path] = field(default_factory=list)
    records: list[Path] = field(default_factory=list)


def build_catalogue(out: str | Path, api_url: str | None = None) -> BuildResult:
    """Write collections/<id>.json and inspire/<id>.xml for every product layer under `out`.

    With `api_url`, each collection's `describedby` link points at the record served by that STAC
    API; without it, at the record written beside the collection.
    """
    out = Path(out)
    result = BuildResult()
    try:
        (out / "collections").mkdir(parents=True, exist_ok=True)
        (out / "inspire").mkdir(parents=True, exist_ok=True)
        for product in load_products():
            for layer in product.layers:
                record_href = (
                    f"{api_url.rstrip('/')}/collections/{layer.id}/inspire.xml"
                    if api_url
                    else f"../inspire/{layer.id}.xml"
                )
                doc = collection_for(product, layer, record_href=record_href)
                cpath = out / "collections" / f"{layer.id}.json"
                _write_atomic(cpath, json.dumps(doc, indent=2, ensure_ascii=False).encode())
                rpath = out / "inspire" / f"{layer.id}.xml"
                _write_atomic(rpath, inspire_record(product, layer))
                result.collections.append(cpath)
                result.records.append(rpath)
    except OSError as e:
        raise CatalogError(
            f"cannot write the catalogue under {out}: {e}; check the folder is writable"
        ) from e
    return result


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
