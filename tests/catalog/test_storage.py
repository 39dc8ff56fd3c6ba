"""The object-store layer on file:// and on S3 (moto): atomic writes, listings, keys, GDAL paths."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
import s3fs
from rasterio.transform import from_origin

from landstack.storage import ObjectStore, S3Options, StoreError, UrlIndex, gdal_env, layout
from landstack.storage.store import TEMP_MARKER

MOTO = ("127.0.0.1", 55900)
MOTO_S3 = S3Options(
    endpoint_url=f"http://{MOTO[0]}:{MOTO[1]}", access_key_id="testing", secret_access_key="testing"
)


def _moto_bucket() -> str:
    """A fresh bucket in the local moto S3, or skip when moto is not running."""
    try:
        socket.create_connection(MOTO, timeout=1).close()
    except OSError as e:
        pytest.skip(f"moto S3 at {MOTO[0]}:{MOTO[1]} is not reachable ({e}); start it: landstack services up")
    bucket = f"storage-{uuid.uuid4().hex[:10]}"
    opts = MOTO_S3.fsspec_options()
    opts.pop("client_kwargs")  # s3fs would send us-east-1 as a location constraint, which S3 refuses
    s3fs.S3FileSystem(**opts).mkdir(bucket)
    return bucket


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "file":
        yield ObjectStore((tmp_path / "root").as_uri())
    else:
        yield ObjectStore(f"s3://{_moto_bucket()}/root", MOTO_S3)


def _raw_keys(store: ObjectStore) -> list[str]:
    """Everything under the root, temporary keys included (bypassing the store's own filter)."""
    root = store.path("") + "/"
    return sorted(p[len(root) :] for p in store.fs.find(store.path("")))


def test_put_read_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    assert store.put_bytes("a/b.bin", b"\x00\x01") == f"{store.url}/a/b.bin"
    assert store.read_bytes("a/b.bin") == b"\x00\x01"
    store.put_json("a/doc.json", {"x": [1, 2]})
    assert store.read_json("a/doc.json") == {"x": [1, 2]}
    assert store.read_text("a/doc.json").startswith("{")
    local = tmp_path / "upload.txt"
    local.write_text("hello")
    store.put_file(local, "c/d/upload.txt")
    assert store.exists("c/d/upload.txt") and not store.exists("c/d/nothing.txt")
    got = store.get_file("c/d/upload.txt", tmp_path / "down" / "copy.txt")
    assert got.read_text() == "hello" and sorted(p.name for p in got.parent.iterdir()) == ["copy.txt"]
    with store.open("a/b.bin") as f:
        assert f.read() == b"\x00\x01"
    many = store.read_many(["a/b.bin", "a/missing.bin"])
    assert many["a/b.bin"] == b"\x00\x01" and isinstance(many["a/missing.bin"], Exception)


def test_failing_writer_leaves_no_object_and_no_temp(store: ObjectStore) -> None:
    with pytest.raises(RuntimeError, match="writer failed"), store.atomic_path("x/out.bin") as tmp:
        with store.fs.open(tmp, "wb") as f:
            f.write(b"half an object")
        raise RuntimeError("writer failed")
    assert not store.exists("x/out.bin")
    assert _raw_keys(store) == []
    # an existing object survives a failed overwrite unchanged
    store.put_bytes("x/out.bin", b"v1")
    with pytest.raises(RuntimeError), store.atomic_path("x/out.bin") as tmp:
        with store.fs.open(tmp, "wb") as f:
            f.write(b"v2, unfinished")
        raise RuntimeError("writer failed")
    assert store.read_bytes("x/out.bin") == b"v1"
    assert _raw_keys(store) == ["x/out.bin"]


def test_listing_ignores_temporary_keys_and_filters(store: ObjectStore) -> None:
    store.put_bytes("p/a.json", b"{}")
    store.put_bytes("p/sub/b.json", b"{}")
    store.put_bytes("p/sub/c.tif", b"II*")
    store.put_bytes("q/d.json", b"{}")
    # what a writer killed mid-way leaves behind
    store.fs.pipe_file(store.path(f"p/e.json{TEMP_MARKER}0123456789ab"), b"{")
    assert store.list("p") == ["p/a.json", "p/sub/b.json", "p/sub/c.tif"]
    assert store.list("p", suffix=".json") == ["p/a.json", "p/sub/b.json"]
    assert store.list() == ["p/a.json", "p/sub/b.json", "p/sub/c.tif", "q/d.json"]
    assert store.list("p/a.json") == ["p/a.json"]  # a prefix naming one object lists it
    assert store.list("nothing/here") == []
    assert store.delete("p/sub", recursive=True) and store.list("p") == ["p/a.json"]
    assert store.delete("q/d.json") and not store.delete("q/d.json")


def test_href_key_round_trip(store: ObjectStore) -> None:
    for key in ("a.json", "models/x/1/model.pt", layout.product_item_key("c", "i")):
        assert store.key_of(store.href(key)) == key
    if store.protocol == "file":
        assert store.key_of(store.path("a/b.tif")) == "a/b.tif"  # a plain local path
    else:
        assert store.key_of(store.gdal_path("a/b.tif")) == "a/b.tif"  # /vsis3/...
    outside = "file:///elsewhere/a.json" if store.protocol == "s3" else "s3://other-bucket/a.json"
    for href in (outside, store.url + "-sibling/a.json", f"{store.url}/../up.json"):
        with pytest.raises(StoreError, match="outside the object store"):
            store.key_of(href)
    with pytest.raises(StoreError, match=r"'\.\.'"):
        store.href("a/../../b")


def _cog(path: Path) -> np.ndarray:
    data = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    profile = {
        "driver": "COG",
        "width": 64,
        "height": 64,
        "count": 1,
        "dtype": "uint16",
        "crs": "EPSG:3035",
        "transform": from_origin(4_000_000, 3_000_000, 10, 10),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return data


def test_gdal_path_opens_a_cog(store: ObjectStore, tmp_path: Path) -> None:
    data = _cog(tmp_path / "x.tif")
    store.put_file(tmp_path / "x.tif", "features/t/x.tif")
    path = store.gdal_path("features/t/x.tif")
    assert path.startswith("/vsis3/" if store.protocol == "s3" else "/")
    before = dict(os.environ)
    with store.gdal_env(), rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 3035
        np.testing.assert_array_equal(ds.read(1), data)
    assert dict(os.environ) == before  # credentials go to a per-thread session, not the environment


def test_gdal_env_decides_where_vsis3_goes(tmp_path: Path) -> None:
    """The S3 options are what make /vsis3/ reach moto: pointed elsewhere, GDAL cannot open the object."""
    store = ObjectStore(f"s3://{_moto_bucket()}/r", MOTO_S3)
    _cog(tmp_path / "x.tif")
    store.put_file(tmp_path / "x.tif", "x.tif")
    elsewhere = S3Options(endpoint_url="http://127.0.0.1:9", access_key_id="a", secret_access_key="b")
    with gdal_env(elsewhere), pytest.raises(rasterio.errors.RasterioIOError):
        rasterio.open(store.gdal_path("x.tif"))


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/data", "s3://", "s3://Bad_Bucket/x", "file://relative/path", "", "gs://b/x"],
)
def test_bad_url_names_the_url_and_the_fix(url: str) -> None:
    with pytest.raises(StoreError) as err:
        ObjectStore(url)
    msg = str(err.value)
    assert repr(url) in msg and "file:///" in msg and "s3://bucket/prefix" in msg


def test_local_path_is_taken_as_file_url(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "plain"))
    assert store.url == (tmp_path / "plain").as_uri() and store.protocol == "file"
    assert store.gdal_path("k.tif") == str(tmp_path / "plain" / "k.tif")


def test_missing_object_errors_name_the_href(store: ObjectStore) -> None:
    with pytest.raises(StoreError, match=f"{store.url}/nope.json does not exist"):
        store.read_json("nope.json")
    store.put_bytes("bad.json", b"{not json")
    with pytest.raises(StoreError, match=r"bad\.json is not valid JSON"):
        store.read_json("bad.json")
    with pytest.raises(StoreError, match="it is not a file"):
        store.put_file("/nonexistent/file.bin", "x.bin")


def test_url_index_lists_each_folder_once(store: ObjectStore) -> None:
    for i in range(3):
        store.put_bytes(f"assets/t/{i}.tif", b"x")
    index = UrlIndex(store.s3)
    assert index.exists(store.href("assets/t/0.tif"))
    store.delete("assets/t/1.tif")
    # the folder was listed once, on the first question: later answers come from that listing
    assert index.exists(store.href("assets/t/1.tif"))
    assert not index.exists(store.href("assets/t/9.tif"))
    assert not index.exists(store.href("assets/none/0.tif"))
    assert not UrlIndex(store.s3).exists(store.href("assets/t/1.tif"))
    with pytest.raises(StoreError, match="unsupported scheme"):
        index.exists("ftp://host/a.tif")


def test_s3_options_forms() -> None:
    s3 = S3Options(endpoint_url="https://minio.example:9000", access_key_id="k", secret_access_key="s")
    assert s3.fsspec_options()["endpoint_url"] == "https://minio.example:9000"
    assert s3.for_url("file:///x") == {} and s3.for_url("s3://b/x")["key"] == "k"
    cfg = s3.gdal_config()
    assert cfg["AWS_S3_ENDPOINT"] == "minio.example:9000" and cfg["AWS_HTTPS"] == "YES"
    assert "AWS_SECRET_ACCESS_KEY" not in cfg
    assert s3.aws_session_options() == {
        "aws_access_key_id": "k",
        "aws_secret_access_key": "s",
        "region_name": "us-east-1",
        "endpoint_url": "minio.example:9000",
    }
    assert S3Options().aws_session_options() is None


def test_layout_prefixes_are_distinct_keys() -> None:
    assert len(set(layout.PREFIXES)) == len(layout.PREFIXES)
    assert layout.model_prefix("m", "1") == "models/m/1" and layout.model_latest_key("m") == "models/m/latest"
    assert layout.archive_prefix("sentinel-2-l2a-synthetic").startswith(layout.ARCHIVE + "/")
    assert layout.samples_key("t.parquet") == "samples/t.parquet"


def test_reading_writes_nothing(tmp_path: Path) -> None:
    store = ObjectStore((tmp_path / "never").as_uri())
    assert store.list() == [] and not store.exists("a.json")
    with pytest.raises(StoreError, match="does not exist"):
        store.read_bytes("a.json")
    assert not (tmp_path / "never").exists()
    store.put_bytes("deep/a.json", b"{}")  # writes create what they need
    assert (tmp_path / "never" / "deep" / "a.json").read_bytes() == b"{}"
