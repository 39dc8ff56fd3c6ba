"""The whole job end to end, as `make demo` runs it, on its own store, database and ports.

Catalogue and a synthetic Sentinel-2 archive published → the training workflows (local runner) →
a model-server process → the production workflow predicting through it → every product layer
published in the STAC API as valid COGs holding only the codes their collections declare.
Then the production workflow is killed midway (SIGKILL) in a second store and resumed: it
completes, its COGs are byte-identical to the uninterrupted run's, and no item was ever visible
with a missing asset.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest
import rasterio

from landstack.catalog import get_layer, layer_ids
from landstack.pipelines.demo import DemoConfig, DemoResult, run_demo, summary
from landstack.pipelines.local_services import model_server_service, stac_api_service, tiler_service
from landstack.pipelines.settings import Settings, get_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = {"size_m": 1200.0, "epochs": 4, "points_per_class": 30, "patches": 40}


def _env(store: Path, local: Path, db: str) -> dict[str, str]:
    return {
        "LANDSTACK_STORE_URL": store.as_uri(),
        "LANDSTACK_LOCAL_DIR": str(local),
        "LANDSTACK_PG_DATABASE": db,
    }


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory, pgstac_database: Any, free_port: Any
) -> Iterator[tuple[DemoResult, Settings, DemoConfig]]:
    root = tmp_path_factory.mktemp("e2e")
    env = _env(root / "store", root / "local", pgstac_database("landstack_e2e"))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()
    config = DemoConfig(**CONFIG, api_port=free_port(), tiler_port=free_port(), model_server_port=free_port())  # type: ignore[arg-type]
    try:
        yield run_demo(config, log=lambda _: None), settings, config
    finally:
        model_server_service(settings, [], port=config.model_server_port).down()
        tiler_service(settings, port=config.tiler_port).down()
        stac_api_service(settings, port=config.api_port).down()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


# the change layer compares two reference years; the demo produces one
ONE_YEAR_LAYERS = [lid for lid in layer_ids() if lid != "hrl-imperviousness-change"]


def test_every_product_layer_is_published_as_valid_cogs(
    demo: tuple[DemoResult, Settings, DemoConfig],
) -> None:
    from rio_cogeo.cogeo import cog_validate

    result, _, _ = demo
    missing = []
    for layer_id in ONE_YEAR_LAYERS:
        body = httpx.get(
            f"{result.api_url}/collections/{layer_id}/items", params={"limit": 50}, timeout=60
        ).json()
        items = [
            f for f in body.get("features", []) if f["properties"].get("landstack:reference_year") == 2023
        ]
        if not items:
            missing.append(layer_id)
            continue
        _, layer = get_layer(layer_id)
        asset = items[0]["assets"][layer.asset_key]
        href = asset["href"]
        assert href.startswith("http://127.0.0.1:"), href  # downloadable from the API's store route
        valid, errors, _ = cog_validate(href, quiet=True)
        assert valid, (layer_id, errors)
        with rasterio.open(href) as src:
            data = src.read(1)
        values = np.unique(data[np.isfinite(data)]) if data.dtype.kind == "f" else np.unique(data)
        outside = {float(v) for v in values} - {float(c.value) for c in layer.classes}
        if layer.value_range is not None:  # continuous: the declared range plus the declared codes
            lo, hi = layer.value_range
            outside = {v for v in outside if not lo <= v <= hi}
        assert not outside, (layer_id, sorted(outside)[:10])
    assert not missing, f"no published item for {missing}"


def test_summary_reports_accuracy_and_where_to_look(demo: tuple[DemoResult, Settings, DemoConfig]) -> None:
    result, _, config = demo
    families = result.production["families"]
    assert set(families) == {"clcplus-backbone", "hrl-imperviousness", "emc-built", "cisc"}
    assert all(f["items"] > 0 and f["layers"] > 0 for f in families.values())
    text = summary(result)
    lines = text.splitlines()
    assert lines[-1] == f"STAC API: http://127.0.0.1:{config.api_port}"
    assert lines[-2].startswith(f"Map: http://127.0.0.1:{config.tiler_port}/map")
    assert "quicklooks:" in text and ".png" in text


def test_inspire_record_resolves_from_the_collection(
    demo: tuple[DemoResult, Settings, DemoConfig], schemas: ModuleType, tmp_path: Path
) -> None:
    result, _, _ = demo
    coll = httpx.get(f"{result.api_url}/collections/clcplus-backbone-ras", timeout=30).json()
    link = next(link for link in coll["links"] if link["rel"] == "describedby")
    record = httpx.get(link["href"], timeout=30)
    assert record.status_code == 200
    path = tmp_path / "ras.xml"
    path.write_bytes(record.content)
    assert schemas.validate_iso19139(path) == []


def _cog_digests(store_root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(store_root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((store_root / "products").rglob("*.tif"))
    }


def _items_with_missing_assets(store_root: Path) -> list[str]:
    bad = []
    for path in (store_root / "products").rglob("*.json"):
        doc = json.loads(path.read_text())
        for asset in doc.get("assets", {}).values():
            href = asset["href"]
            if href.startswith("file://") and not Path(href.removeprefix("file://")).exists():
                bad.append(f"{path.name}: {href}")
    return bad


def test_killed_production_run_resumes_to_identical_outputs(
    demo: tuple[DemoResult, Settings, DemoConfig], tmp_path: Path, pgstac_database: Any
) -> None:
    _, settings, _ = demo
    first = Path(settings.store_url.removeprefix("file://"))
    second = tmp_path / "store"
    for part in ("catalog", "archive", "models"):  # the inputs: the same archive and models
        shutil.copytree(first / part, second / part)
    env = {**os.environ, **_env(second, tmp_path / "local", pgstac_database("landstack_resume"))}
    record = next((first.parent / "local" / "runs").glob("landstack-production-*/record.json"))
    params = json.loads(record.read_text())["parameters"]
    cmd = [sys.executable, "-m", "landstack.pipelines", "workflow", "run", "landstack-production"]
    cmd += [arg for k, v in params.items() for arg in ("-p", f"{k}={v}")]

    run = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 900
    killed = False
    while time.monotonic() < deadline and run.poll() is None:
        if list((second / "predictions").rglob("item.json")):
            os.killpg(run.pid, signal.SIGKILL)
            killed = True
            break
        assert not _items_with_missing_assets(second)
        time.sleep(0.5)
    run.wait(60)
    assert killed, "the run ended before it could be killed midway"
    assert not _items_with_missing_assets(second)

    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed" in resumed.stdout
    assert not _items_with_missing_assets(second)
    assert _cog_digests(second) == _cog_digests(first)
