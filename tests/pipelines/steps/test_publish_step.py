"""The publish step through `step run`, into a fresh pgstac database."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from landstack.catalog.build import build_catalogue
from landstack.pipelines.settings import get_settings
from landstack.storage import ObjectStore

from ...conftest import shared_path
from ..test_publish import dsn  # noqa: F401 - the fresh pgstac database fixture
from .conftest import step_run

pytestmark = pytest.mark.integration


def _counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        c = conn.execute("SELECT count(*) FROM pgstac.collections").fetchone()
        i = conn.execute("SELECT count(*) FROM pgstac.items").fetchone()
    assert c and i
    return int(c[0]), int(i[0])


def test_publish_step(
    dsn: str,  # noqa: F811 - the fresh-database fixture imported above
    tmp_path: Path,
    store: ObjectStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LANDSTACK_STAC_SCHEMAS_DIR", str(shared_path("schemas", "stac")))
    get_settings.cache_clear()
    built = build_catalogue(tmp_path / "store" / "catalog")
    inp = {"dsn": dsn, "items": []}
    out = step_run("publish", inp, tmp_path).output
    assert len(out["collections"]) == len(built.collections) and out["items_loaded"] == 0
    assert out["refused"] == [] and _counts(dsn) == (len(built.collections), 0)
    # upserts: publishing again leaves the same database
    assert step_run("publish", inp, tmp_path).output == out
    assert _counts(dsn) == (len(built.collections), 0)

    # an item of an unknown collection is refused: the step fails unless refusals are allowed
    orphan = {"type": "Feature", "stac_version": "1.1.0", "id": "orphan", "collection": "nope"}
    store.put_json("products/x/orphan.json", orphan | {"geometry": None, "properties": {}, "links": []})
    inp = {"dsn": dsn, "items": ["products"]}
    failed = step_run("publish", inp, tmp_path)
    assert failed.exit_code == 1, failed.stderr
    assert "publishing refused 1 documents, first orphan" in failed.stderr
    allowed = step_run("publish", {**inp, "allow_refused": True}, tmp_path).output
    assert [r["id"] for r in allowed["refused"]] == ["orphan"]
    assert json.dumps(allowed)  # plain JSON
