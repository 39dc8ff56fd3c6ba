"""Moving step inputs and outputs between the object store (or any URL) and a local work folder.

Model code reads local files (torch, pandas, rasterio); steps exchange URLs. These helpers fetch
an input URL into the work folder and upload a folder of results under a store prefix.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

from landstack.pipelines.errors import BadInputError
from landstack.pipelines.steps.registry import current_store
from landstack.storage import ObjectStore, StoreError, open_url


def fetch(url: str, work: Path) -> Path:
    """A local file with the content of `url` (file://, s3:// or a path); BadInputError when absent."""
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        path = Path(unquote(parts.path) if parts.scheme == "file" else url)
        if not path.is_file():
            raise BadInputError(f"{url} does not exist or is not a file; give the URL of an existing object")
        return path
    target = work / Path(parts.path).name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open_url(url, "rb", current_store().s3) as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    except FileNotFoundError as e:
        raise BadInputError(f"{url} does not exist; give the URL of an existing object") from e
    except (OSError, ValueError) as e:
        raise StoreError(f"cannot read {url}: {e}") from e
    return target


def upload(store: ObjectStore, folder: Path, prefix: str) -> dict[str, str]:
    """Upload every file under `folder` to `prefix/<relative path>`; relative path -> href."""
    hrefs = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        hrefs[rel] = store.put_file(path, f"{prefix}/{rel}")
    return hrefs
