"""The demo chain end to end: catalogue, archive, pgstac, STAC API, samples through the API, TempCNN.

Runs on its own object store, database and API port, so it never touches the demo's data.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import numpy as np
import pandas as pd
import psycopg
import pytest
from pystac_client import Client

from landstack.catalog import layer_ids
from landstack.pipelines.demo import SAMPLES_KEY, DemoConfig, DemoResult, run_demo, summary
from landstack.pipelines.local_services import port_open, stac_api_service
from landstack.pipelines.settings import Settings
from landstack.pipelines.store import ObjectStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PG = "postgresql://postgres:postgres@127.0.0.1:55432"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoResult, Settings, DemoConfig]]:
    if not port_open("127.0.0.1", 55432):
        pytest.skip("PostgreSQL is not running: start it with 'make up'")
    from pypgstac.db import PgstacDB
    from pypgstac.migrate import Migrate

    name = f"landstack_e2e_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = PgstacDB(dsn=f"{PG}/{name}")
    Migrate(db).run_migration()
    db.close()
    root = tmp_path_factory.mktemp("e2e")
    settings = Settings(store_url=(root / "store").as_uri(), pg_database=name, local_dir=root / "local")
    config = DemoConfig(size_m=1200, points_per_class=25, revisit_days=10, epochs=4, api_port=_free_port())
    try:
        yield run_demo(settings, config, log=lambda _: None), settings, config
    finally:
        stac_api_service(settings, port=config.api_port).down()
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_catalogue_and_archive_are_published(demo: tuple[DemoResult, Settings, DemoConfig]) -> None:
    result, _, _ = demo
    assert set(result.collections) == {*layer_ids(), "sentinel-2-l2a-synthetic"}
    body = httpx.get(f"{result.api_url}/collections", params={"limit": 100}, timeout=30).json()
    assert {c["id"] for c in body["collections"]} >= set(result.collections)


def test_inspire_record_resolves_from_the_collection(
    demo: tuple[DemoResult, Settings, DemoConfig], schemas: ModuleType, tmp_path: Path
) -> None:
    result, _, _ = demo
    coll = httpx.get(f"{result.api_url}/collections/clcplus-backbone-ras", timeout=30).json()
    link = next(link for link in coll["links"] if link["rel"] == "describedby")
    record = httpx.get(link["href"], timeout=30)
    assert record.status_code == 200
    assert record.headers["content-type"].startswith("application/vnd.iso.19139+xml")
    path = tmp_path / "ras.xml"
    path.write_bytes(record.content)
    assert schemas.validate_iso19139(path) == []


def test_archive_is_searchable_through_the_api(demo: tuple[DemoResult, Settings, DemoConfig]) -> None:
    result, _, _ = demo
    client = Client.open(result.api_url)
    items = list(client.search(collections=["sentinel-2-l2a-synthetic"], max_items=1000).items())
    assert len(items) == result.archive_items
    cloudy = list(
        client.search(
            collections=["sentinel-2-l2a-synthetic"], query={"eo:cloud_cover": {"lt": 10}}, max_items=1000
        ).items()
    )
    assert 0 < len(cloudy) < len(items)
    assert all(i.properties["eo:cloud_cover"] < 10 for i in cloudy)


def test_training_table_and_model(demo: tuple[DemoResult, Settings, DemoConfig]) -> None:
    from landstack.models.modelfile import predict_classes
    from landstack.models.registry import load_registered

    result, settings, _ = demo
    store = ObjectStore.from_settings(settings)
    with store.open(SAMPLES_KEY) as f:
        table = pd.read_parquet(f)
    assert len(table) == result.samples > 100
    assert list(table.columns[:2]) == ["label", "group"] and "NDVI_53" in table.columns
    assert set(table["label"]) <= set(range(1, 12))
    for key in ("overall_accuracy", "kappa", "macro_f1", "per_class", "random_forest"):
        assert key in result.metrics
    assert store.exists(result.model_item.removeprefix(store.url + "/"))
    model, metadata = load_registered(store.url, "tempcnn-clcplus")
    names, steps = metadata["input"]["features"], int(metadata["input"]["time_steps"])
    x = np.stack([table[[f"{n}_{t}" for t in range(steps)]].to_numpy(np.float32) for n in names], axis=1)
    predicted = predict_classes(model, metadata, np.nan_to_num(x[:50]))
    assert predicted.shape == (50,) and set(predicted) <= set(range(1, 12))


def test_summary_tells_where_to_look(demo: tuple[DemoResult, Settings, DemoConfig]) -> None:
    result, _, config = demo
    text = summary(result)
    assert text.splitlines()[-1] == f"STAC API: http://127.0.0.1:{config.api_port}"
    assert "inspire.xml" in text and "model registry" in text
