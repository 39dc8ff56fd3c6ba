"""The product steps with the object store on s3:// (a moto server): postprocess -> assemble, all families.

Every output must land on S3 through the storage layer's atomic writes: COGs that validate,
attribute tables, quicklook PNGs and items that validate offline and name only objects that
exist, and no temporary key left behind. The moto server is the one `landstack services up`
runs on 127.0.0.1:55900, else one started for this module.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from landstack.catalog.items import check_item
from landstack.pipelines.products import codes
from landstack.pipelines.settings import get_settings
from landstack.pipelines.steps import run_step
from landstack.storage import ObjectStore, S3Options, gdal_env
from landstack.storage.store import TEMP_MARKER

from ._predictions import all_families, grid, write_prediction

YEAR = 2023
FAMILIES = ["clcplus-backbone", "hrl-imperviousness", "emc-built", "cisc"]
SERVICES_MOTO = ("127.0.0.1", 55900)


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The local services' moto S3, or a moto server started for these tests on a free port."""
    if _listening(*SERVICES_MOTO):
        yield f"http://{SERVICES_MOTO[0]}:{SERVICES_MOTO[1]}"
        return
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        pytest.skip(
            f"moto S3 is not running on {SERVICES_MOTO} and {exe} is absent: run 'landstack services up'"
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not _listening("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"moto_server did not start on port {port}; see {log.name}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
def s3_store(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ObjectStore]:
    """A fresh bucket as the configured store (LANDSTACK_STORE_URL=s3://..., moto's endpoint)."""
    import s3fs

    s3 = S3Options(endpoint_url=moto_endpoint, access_key_id="testing", secret_access_key="testing")
    opts = s3.fsspec_options()
    opts.pop("client_kwargs")  # s3fs would send us-east-1 as a location constraint, which S3 refuses
    bucket = f"products-{uuid.uuid4().hex[:10]}"
    s3fs.S3FileSystem(**opts).mkdir(bucket)
    for name, value in {
        "STORE_URL": f"s3://{bucket}/root",
        "S3_ENDPOINT_URL": moto_endpoint,
        "S3_ACCESS_KEY_ID": "testing",
        "S3_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(f"LANDSTACK_{name}", value)
    get_settings.cache_clear()
    yield get_settings().store()
    get_settings.cache_clear()


def _raw_keys(store: ObjectStore) -> list[str]:
    """Every object under the store's root, temporary keys included (the store's own listing hides them)."""
    store.fs.invalidate_cache()
    root = store.path("") + "/"
    return sorted(p[len(root) :] for p in store.fs.find(store.path("")))


def _check_assets(store: ObjectStore, doc: dict[str, Any], tmp: Path) -> None:
    """Every asset of the item exists on S3; COGs validate and open, quicklooks are PNGs."""
    for key, asset in doc["assets"].items():
        href = asset["href"]
        assert href.startswith(store.url + "/"), href
        assert store.exists(store.key_of(href)), f"{doc['id']}: asset {key} -> {href} is missing"
        if href.endswith(".tif"):
            local = store.get_file(store.key_of(href), tmp / f"{doc['id']}-{key}.tif")
            assert cog_validate(str(local), quiet=True)[0], href
            with gdal_env(store.s3), rasterio.open(href) as ds:  # GDAL reads it straight from S3 too
                assert ds.count >= 1 and ds.width > 0
        elif href.endswith(".png"):
            assert store.read_bytes(store.key_of(href))[:8] == b"\x89PNG\r\n\x1a\n"


def test_postprocess_and_assemble_on_s3(s3_store: ObjectStore, tmp_path: Path) -> None:
    store = s3_store
    g = grid(4_449_000.0, 3_061_000.0, 100, 100)
    pred = write_prediction(store, "E44N30-25K-r1c1", g, YEAR, all_families(g))
    assert pred.startswith("s3://")

    post = run_step("postprocess", {"prediction": pred, "families": FAMILIES}, store=store)
    assert post["item"].startswith(store.url + "/intermediates/")
    inter = store.read_json(store.key_of(post["item"]))
    check_item(inter)
    _check_assets(store, inter, tmp_path)
    for name in ("ras", "imd", "cisc-classes"):
        assert store.exists(store.key_of(post["layers"][name]))

    out = run_step("assemble", {"product_tile": "E44N30", "year": YEAR, "families": FAMILIES}, store=store)
    docs = [store.read_json(store.key_of(u)) for u in out["items"]]
    collections = {d["collection"] for d in docs}
    assert {
        codes.CLCPLUS_RAS,
        codes.CLCPLUS_RASCL,
        codes.CLCPLUS_RASDL,
        codes.CLCPLUS_RASPL,
        codes.HRL_IMD,
        codes.HRL_SEALING,
        codes.CISC_CLASSES,
        codes.CISC_VALID,
    } <= collections
    assert {
        f"emc-built-{p}-{r}" for p in ("s", "nres", "greenness") for r in ("10m", "100m", "1km")
    } <= collections
    for doc in docs:
        check_item(doc)  # publish-ready: validates offline
        assert {"data", "thumbnail"} <= set(doc["assets"]), doc["id"]
        _check_assets(store, doc, tmp_path)
    ras = next(d for d in docs if d["collection"] == codes.CLCPLUS_RAS)
    assert "attribute_table" in ras["assets"]
    with gdal_env(store.s3), rasterio.open(ras["assets"]["data"]["href"]) as ds:
        mosaic = ds.read(1)
    with gdal_env(store.s3), rasterio.open(post["layers"]["ras"]) as ds:
        np.testing.assert_array_equal(mosaic, ds.read(1))  # the mosaic holds the post-processed pixels

    keys = _raw_keys(store)
    assert not [k for k in keys if TEMP_MARKER in k], "temporary keys left behind"
    # every product object belongs to an item that names it
    named = {store.key_of(a["href"]) for d in docs for a in d["assets"].values()}
    items = {store.key_of(u) for u in out["items"]}
    assert {k for k in keys if k.startswith("products/")} == named | items
