"""Fixtures of the tiler tests: a fresh pgstac database with real product COGs published, the
STAC API (serving the store, with map links) and the tiler on loopback ports.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
import uvicorn

from landstack.catalog.build import build_catalogue

PG: dict[str, Any] = {"host": "127.0.0.1", "port": 55432, "user": "postgres", "password": "postgres"}
HERE = Path(__file__).resolve().parent


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"landstack_test_{name}", HERE / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


product_cogs = _load("product_cogs")


def _pg_up() -> bool:
    try:
        with socket.create_connection((PG["host"], PG["port"]), timeout=0.5):
            return True
    except OSError:
        return False


def _dsn(db: str) -> str:
    return f"postgresql://{PG['user']}:{PG['password']}@{PG['host']}:{PG['port']}/{db}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    def __init__(self, app: Any, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server on port {port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Stack:
    api: str
    tiler: str
    store: Path
    items: list[dict[str, Any]]
    dbname: str


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """pgstac with the catalogue and product COGs, the STAC API and the tiler, all on loopback."""
    if not _pg_up():
        pytest.skip("PostgreSQL+pgstac is not running on 127.0.0.1:55432: run 'landstack services up'")
    from pypgstac.db import PgstacDB
    from pypgstac.migrate import Migrate

    from landstack.pipelines.publish import PgstacTarget, publish
    from landstack.pipelines.settings import Settings
    from landstack.stac_api import ApiSettings
    from landstack.stac_api import create_app as create_api
    from landstack.tiler import TilerSettings
    from landstack.tiler import create_app as create_tiler

    dbname = f"landstack_test_tiler_{os.getpid()}"
    with psycopg.connect(_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    servers: list[_Server] = []
    try:
        db = PgstacDB(dsn=_dsn(dbname))
        try:
            Migrate(db).run_migration()
        finally:
            db.close()
        tmp = tmp_path_factory.mktemp("tiler")
        store = tmp / "store"
        api_port, tiler_port = _free_port(), _free_port()
        api_url, tiler_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{tiler_port}"
        build_catalogue(store / "catalog", api_url=api_url)
        items = product_cogs.write_products(store)
        pipe = Settings(store_url=store.as_uri(), local_dir=tmp / "local")
        target = PgstacTarget(_dsn(dbname))
        try:
            report = publish(pipe.store(), target, settings=pipe)
        finally:
            target.close()
        assert report.ok, report.refused
        api_settings = ApiSettings(
            db_name=dbname, port=api_port, store_url=store.as_uri(), serve_store=True, tiler_url=tiler_url
        )
        servers.append(_Server(create_api(api_settings), api_port))
        web_libs = Path(__file__).resolve().parents[3] / ".tools" / "web" / "node_modules"
        tiler_settings = TilerSettings(
            db_name=dbname, port=tiler_port, api_url=api_url, web_libs_dir=web_libs
        )
        servers.append(_Server(create_tiler(tiler_settings), tiler_port))
        yield Stack(api_url, tiler_url, store, items, dbname)
    finally:
        for s in servers:
            s.stop()
        with psycopg.connect(_dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
