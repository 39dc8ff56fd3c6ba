"""`landstack publish`: collections and items from the object store into a fresh pgstac database."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from landstack.catalog import get_layer
from landstack.catalog.build import build_catalogue
from landstack.catalog.items import build_item, item_doc, layer_asset, reference_period
from landstack.catalog.validation import StacValidator
from landstack.pipelines.publish import PgstacTarget, publish
from landstack.pipelines.settings import Settings
from landstack.storage import ObjectStore, layout

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO.parent / "shared" / "schemas" / "stac"
ADMIN = "postgresql://postgres:postgres@127.0.0.1:55432/postgres"
C = "clcplus-backbone-ras"


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def validator() -> StacValidator:
    if not SCHEMAS.is_dir():
        pytest.skip(f"{SCHEMAS} is absent: extension schemas are read from ../shared beside the repository")
    return StacValidator(SCHEMAS)


@pytest.fixture
def dsn() -> Iterator[str]:
    """A fresh pgstac database (dropped afterwards)."""
    if not _port_open(55432):
        pytest.skip("PostgreSQL+pgstac is not running on 127.0.0.1:55432: run 'landstack services up'")
    from pypgstac.db import PgstacDB
    from pypgstac.migrate import Migrate

    name = f"landstack_test_publish_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    db = PgstacDB(dsn=url)
    Migrate(db).run_migration()
    db.close()
    try:
        yield url
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def item(item_id: str, href: str, collection: str = C, year: int = 2021) -> dict[str, Any]:
    _, layer = get_layer(collection)
    start, end = reference_period(year)
    built = build_item(
        item_id,
        geometry={"type": "Polygon", "coordinates": [[[5, 45], [6, 45], [6, 46], [5, 46], [5, 45]]]},
        start=start,
        end=end,
        properties={"proj:code": layer.grid.crs},
        assets={layer.asset_key: layer_asset(layer, href)},
        collection=collection,
        collection_href=f"../../catalog/collections/{collection}.json",
    )
    return item_doc(built)


def _write(root: Path, key: str, doc: Any) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


@pytest.fixture
def store(tmp_path: Path) -> tuple[ObjectStore, Settings]:
    """A file:// store with the catalogue, 5 good items, and 3 that must be refused."""
    root = tmp_path / "store"
    build_catalogue(root / "catalog")
    for i in range(5):
        (root / "products" / C / f"t{i}").mkdir(parents=True)
        (root / "products" / C / f"t{i}" / "ras.tif").write_bytes(b"II*\x00")
        # relative href, resolved against the item file
        _write(root, f"products/{C}/t{i}/t{i}.json", item(f"t{i}", "./ras.tif"))
    bad = item("bad-no-datetime", (root / "products" / C / "t0" / "ras.tif").as_uri())
    del bad["properties"]["start_datetime"]
    _write(root, f"products/{C}/bad/bad-no-datetime.json", bad)
    _write(root, f"products/{C}/gone/gone.json", item("gone", (root / "nowhere" / "ras.tif").as_uri()))
    _write(root, "products/x/orphan.json", item("orphan", "./ras.tif") | {"collection": "no-such-collection"})
    settings = Settings(
        store_url=root.as_uri(),
        stac_schemas_dir=SCHEMAS if SCHEMAS.is_dir() else None,
        local_dir=tmp_path / "local",
    )
    return settings.store(), settings


def _db_state(dsn: str) -> tuple[int, int, str]:
    with psycopg.connect(dsn) as conn:
        n_coll = conn.execute("SELECT count(*) FROM pgstac.collections").fetchone()
        n_items = conn.execute("SELECT count(*) FROM pgstac.items").fetchone()
        digest = conn.execute(
            "SELECT md5(string_agg(id || content::text, ',' ORDER BY id)) FROM pgstac.items"
        ).fetchone()
    assert n_coll and n_items and digest
    return int(n_coll[0]), int(n_items[0]), str(digest[0])


def test_publish_loads_valid_items_and_reports_the_others(
    dsn: str, store: tuple[ObjectStore, Settings], validator: StacValidator
) -> None:
    st, settings = store
    target = PgstacTarget(dsn)
    try:
        report = publish(st, target, settings=settings, validator=validator)
    finally:
        target.close()
    assert len(report.collections) == 24
    assert report.items_loaded == 5
    reasons = {r.id: r.reason for r in report.refused}
    assert set(reasons) == {"bad-no-datetime", "gone", "orphan"}
    assert reasons["bad-no-datetime"].startswith("invalid STAC item")
    assert "does not exist" in reasons["gone"] and "nowhere/ras.tif" in reasons["gone"]
    assert "collection 'no-such-collection' is not published" in reasons["orphan"]
    n_coll, n_items, _ = _db_state(dsn)
    assert (n_coll, n_items) == (24, 5)
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT content FROM pgstac.items WHERE id = 't3'").fetchone()
    assert row is not None
    href = row[0]["assets"][get_layer(C)[1].asset_key]["href"]
    assert href == st.href(f"products/{C}/t3/ras.tif")


def test_publishing_twice_leaves_the_same_database(
    dsn: str, store: tuple[ObjectStore, Settings], validator: StacValidator
) -> None:
    st, settings = store
    states = []
    for _ in range(2):
        target = PgstacTarget(dsn)
        try:
            publish(st, target, settings=settings, validator=validator)
        finally:
            target.close()
        states.append(_db_state(dsn))
    assert states[0] == states[1]
    assert states[0][:2] == (24, 5)


def test_cli_exits_non_zero_naming_each_refused_item(
    dsn: str, store: tuple[ObjectStore, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the command's own app: the whole CLI imports every step (and torch) first
    from landstack.pipelines.commands.publish import app
    from landstack.pipelines.settings import get_settings

    st, settings = store
    monkeypatch.setenv("LANDSTACK_STORE_URL", st.url)
    if settings.stac_schemas_dir:
        monkeypatch.setenv("LANDSTACK_STAC_SCHEMAS_DIR", str(settings.stac_schemas_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["--dsn", dsn])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert "published 24 collections and 5 items" in result.output
    for refused_id in ("bad-no-datetime", "gone", "orphan"):
        assert f"refused {refused_id} (" in result.output
    assert _db_state(dsn)[:2] == (24, 5)


def test_an_unreachable_database_is_a_clear_error(store: tuple[ObjectStore, Settings]) -> None:
    from landstack.pipelines.publish import PublishError

    with pytest.raises(PublishError, match=r"cannot use the pgstac database .*:1/.*landstack services up"):
        PgstacTarget("postgresql://postgres:postgres@127.0.0.1:1/nothing")


def test_publish_from_s3(dsn: str, tmp_path: Path, validator: StacValidator) -> None:
    """Items and COGs in S3 (moto): s3:// asset hrefs are checked through s3fs."""
    if not _port_open(55900):
        pytest.skip("moto S3 is not running on 127.0.0.1:55900: run 'landstack services up'")
    bucket = f"publish-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        store_url=f"s3://{bucket}/root",
        s3_endpoint_url="http://127.0.0.1:55900",
        s3_access_key_id="test",
        s3_secret_access_key="test",
        stac_schemas_dir=validator.schemas_dir,
        local_dir=tmp_path / "local",
    )
    st = settings.store()
    st.fs.call_s3("create_bucket", Bucket=bucket)
    local = tmp_path / "catalog"
    build_catalogue(local)
    for path in sorted((local / "collections").glob("*.json")):
        st.put_file(path, f"catalog/collections/{path.name}")
    st.put_bytes(f"products/{C}/s1/ras.tif", b"II*\x00")
    st.put_json(f"products/{C}/s1/s1.json", item("s1", "./ras.tif"))
    st.put_json(f"products/{C}/s2/s2.json", item("s2", st.href(f"products/{C}/s2/missing.tif")))
    target = PgstacTarget(dsn)
    try:
        report = publish(st, target, settings=settings, validator=validator)
    finally:
        target.close()
    assert report.items_loaded == 1
    assert [(r.id, "does not exist" in r.reason) for r in report.refused] == [("s2", True)]
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT content->'assets'->'data'->>'href' FROM pgstac.items WHERE id = 's1'"
        ).fetchone()
    assert row == (f"s3://{bucket}/root/products/{C}/s1/ras.tif",)


def test_asset_checker_lists_each_folder_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many assets in one folder cost one listing; missing files and foreign schemes are named."""
    from fsspec.implementations.local import LocalFileSystem

    from landstack.pipelines.publish import AssetChecker

    folder = tmp_path / layout.PRODUCTS / C / "t0"
    folder.mkdir(parents=True)
    for i in range(20):
        (folder / f"b{i}.tif").write_bytes(b"II*\x00")
    calls: list[str] = []
    real_ls = LocalFileSystem.ls

    def counting_ls(self: Any, path: str, detail: bool = False, **kwargs: Any) -> Any:
        calls.append(path)
        return real_ls(self, path, detail=detail, **kwargs)

    monkeypatch.setattr(LocalFileSystem, "ls", counting_ls)
    checker = AssetChecker(Settings(store_url=tmp_path.as_uri(), local_dir=tmp_path / "local"))
    assert all(checker.missing((folder / f"b{i}.tif").as_uri()) is None for i in range(20))
    assert checker.missing(str(folder / "b3.tif")) is None  # a plain path
    assert (
        checker.missing((folder / "b99.tif").as_uri())
        == f"asset href {(folder / 'b99.tif').as_uri()} does not exist"
    )
    assert len(calls) == 1
    assert "unsupported scheme 'ftp'" in str(checker.missing("ftp://host/a.tif"))
    assert checker.missing("https://example.org/a.tif") is None
