"""Fixtures of the STAC API tests: a fresh pgstac database, the API on a loopback port, test data.

The database is created in the local PostgreSQL started by `landstack services up` (never the
`landstack` database of the demo) and dropped at the end of the session.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa

from landstack.catalog import get_layer
from landstack.catalog.build import build_catalogue
from landstack.catalog.items import build_item, item_doc, layer_asset, reference_period
from landstack.stac_api import ApiKey, ApiSettings, create_app, hash_token

REPO = Path(__file__).resolve().parents[3]
SCHEMAS = REPO.parent / "shared" / "schemas" / "stac"
PG: dict[str, Any] = {"host": "127.0.0.1", "port": 55432, "user": "postgres", "password": "postgres"}

WRITE_TOKEN = "test-writer-" + uuid.uuid4().hex
READ_TOKEN = "test-reader-" + uuid.uuid4().hex
SEARCH_COLLECTION = "hrl-imperviousness-imd"
N_ITEMS = 40
EO_EXTENSION = "https://stac-extensions.github.io/eo/v2.0.0/schema.json"


def _pg_up() -> bool:
    try:
        with socket.create_connection((PG["host"], PG["port"]), timeout=0.5):
            return True
    except OSError:
        return False


def dsn(dbname: str) -> str:
    return f"postgresql://{PG['user']}:{PG['password']}@{PG['host']}:{PG['port']}/{dbname}"


def create_pgstac_database(name: str) -> str:
    """Create a database with pgstac migrated in; returns its DSN."""
    from pypgstac.db import PgstacDB
    from pypgstac.migrate import Migrate

    with psycopg.connect(dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    db = PgstacDB(dsn=dsn(name))
    try:
        Migrate(db).run_migration()
    finally:
        db.close()
    return dsn(name)


def drop_database(name: str) -> None:
    with psycopg.connect(dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def product_item(
    collection_id: str, item_id: str, href: str, year: int, lon: float, lat: float, **props: Any
) -> dict[str, Any]:
    """A product item as the production chain publishes it (one COG asset of the layer)."""
    _, layer = get_layer(collection_id)
    start, end = reference_period(year)
    item = build_item(
        item_id,
        geometry={
            "type": "Polygon",
            "coordinates": [
                [[lon, lat], [lon + 0.5, lat], [lon + 0.5, lat + 0.5], [lon, lat + 0.5], [lon, lat]]
            ],
        },
        datetime=dt.datetime(year, 7, 1, tzinfo=dt.UTC),
        start=start,
        end=end,
        properties={
            "proj:code": layer.grid.crs,
            "created": dt.datetime(2026, 1, 1, tzinfo=dt.UTC).isoformat().replace("+00:00", "Z"),
            **props,
        },
        assets={layer.asset_key: layer_asset(layer, href)},
        collection=collection_id,
        collection_href=f"../../../catalog/collections/{collection_id}.json",
    )
    return item_doc(item)


def write_search_items(store_root: Path, n: int = N_ITEMS) -> list[dict[str, Any]]:
    """n items of SEARCH_COLLECTION on a 8-column grid over 2018..2021, COG stubs beside them."""
    items = []
    _, layer = get_layer(SEARCH_COLLECTION)
    for i in range(n):
        iid = f"imd-{i:03d}"
        folder = store_root / "products" / SEARCH_COLLECTION / iid
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{layer.asset_key}.tif").write_bytes(b"II*\x00")  # existence is what publish checks
        item = product_item(
            SEARCH_COLLECTION,
            iid,
            f"./{layer.asset_key}.tif",
            2018 + i % 4,
            10.0 + (i % 8) * 0.5,
            48.0 + (i // 8) * 0.5,
            **{
                "landstack:coverage": float(i),
                "landstack:tile": f"E{40 + i % 8}N{30 + i // 8}",
                # cloudy share of the year's observations; never 0 (the validator reads 0 as missing)
                "eo:cloud_cover": 5.0 + i,
            },
        )
        (folder / f"{iid}.json").write_text(json.dumps(item))
        items.append(item)
    return items


@dataclass
class Api:
    url: str
    settings: ApiSettings
    dbname: str
    private_key: Any
    store: Path

    def jwt(self, scope: str = "stac:write", expires_in: int = 300, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "sub": "tester",
            "iss": "https://issuer.test",
            "aud": "landstack",
            "iat": now,
            "exp": now + expires_in,
            "scope": scope,
            **claims,
        }
        return jwt.encode(body, self.private_key, algorithm="RS256", headers={"kid": "test-key"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The STAC API on a fresh pgstac database, with the catalogue and N_ITEMS items published."""
    if not _pg_up():
        pytest.skip("PostgreSQL+pgstac is not running on 127.0.0.1:55432: run 'landstack services up'")
    from landstack.pipelines.publish import PgstacTarget, publish
    from landstack.pipelines.settings import Settings

    dbname = f"landstack_test_api_{os.getpid()}"
    db_dsn = create_pgstac_database(dbname)
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    try:
        tmp = tmp_path_factory.mktemp("stac-api")
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        jwks_file = tmp / "jwks.json"
        jwks_file.write_text(json.dumps({"keys": [{**jwk, "kid": "test-key", "use": "sig", "alg": "RS256"}]}))

        port = _free_port()
        store_root = tmp / "store"
        settings = ApiSettings(
            db_name=dbname,
            port=port,
            store_url=store_root.as_uri(),
            serve_store=True,
            keys=[
                ApiKey(name="writer", sha256=hash_token(WRITE_TOKEN), scopes=["read", "write"]),
                ApiKey(name="reader", sha256=hash_token(READ_TOKEN), scopes=["read"]),
            ],
            oidc_jwks_file=jwks_file,
            oidc_audience="landstack",
            oidc_issuer="https://issuer.test",
            cors_origins=["https://viewer.example"],
        )
        schemas = SCHEMAS if SCHEMAS.is_dir() else None
        pipe_settings = Settings(
            store_url=store_root.as_uri(), stac_schemas_dir=schemas, local_dir=tmp / "local"
        )
        build_catalogue(store_root / "catalog", api_url=f"http://127.0.0.1:{port}")
        write_search_items(store_root)
        # Numeric properties sort and compare as numbers only when declared as queryables.
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute("SET search_path TO pgstac, public")
            conn.execute(
                "INSERT INTO pgstac.queryables (name, definition, property_wrapper) VALUES "
                "('landstack:coverage', '{\"type\": \"number\"}', 'to_float'), "
                "('landstack:tile', '{\"type\": \"string\"}', 'to_text')"
            )
        target = PgstacTarget(db_dsn)
        try:
            report = publish(pipe_settings.store(), target, settings=pipe_settings)
        finally:
            target.close()
        assert report.ok, report.refused
        assert report.items_loaded == N_ITEMS

        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the STAC API did not start")
            time.sleep(0.05)
        yield Api(f"http://127.0.0.1:{port}", settings, dbname, key, store_root)
    finally:
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=10)
        drop_database(dbname)


@pytest.fixture(scope="session")
def make_item() -> Any:
    """product_item(collection_id, item_id, href, year, lon, lat, **props) as a fixture."""
    return product_item


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    if not SCHEMAS.is_dir():
        pytest.skip(f"{SCHEMAS} is absent: extension schemas are read from ../shared beside the repository")
    return SCHEMAS


@pytest.fixture(scope="session")
def tokens() -> dict[str, str]:
    return {"write": WRITE_TOKEN, "read": READ_TOKEN}
