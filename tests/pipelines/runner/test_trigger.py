"""The retraining trigger through the local runner against a real STAC API on pgstac.

Publishing a new synthetic Sentinel-2 collection makes the trigger submit exactly one training
run; running it again with nothing new submits none; a second new collection submits one more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from landstack.pipelines import submission, trigger, workflows
from landstack.pipelines.runner import LocalRunner, RunOptions
from landstack.pipelines.settings import Settings, get_settings

pytestmark = pytest.mark.integration


def test_trigger_submits_once_per_news(
    stac_api: tuple[str, str], publish_archive: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, dbname = stac_api
    store_url = (tmp_path / "store").as_uri()
    monkeypatch.setenv("LANDSTACK_STORE_URL", store_url)
    monkeypatch.setenv("LANDSTACK_LOCAL_DIR", str(tmp_path / "local"))
    monkeypatch.setenv("LANDSTACK_WORKFLOW_LOCAL_START", "false")  # record the submission, don't train
    get_settings.cache_clear()
    settings = Settings(pg_database=dbname)
    store = settings.store()

    def run_trigger() -> int:
        before = len(submission.submissions(store))
        runner = LocalRunner(
            workflows.load("landstack-retraining-trigger"),
            RunOptions(runs_dir=tmp_path / "runs", mode="in-process", backoff_scale=0),
        )
        runner.run({"source": url, "labels": f"{store_url}/labels.parquet"})
        return len(submission.submissions(store)) - before

    publish_archive(store, dbname, "sentinel-2-l2a-synthetic-a", seed=1)
    assert run_trigger() == 1
    first = submission.submissions(store)[0]
    assert first["workflow"] == "landstack-training"
    assert first["parameters"]["collection"] == "sentinel-2-l2a-synthetic-a"
    assert first["parameters"]["year"] == "2023"  # data past 2023's end: the year is complete
    assert any("new collection" in r for r in first["reason"])
    state = trigger.load_state(store)
    assert set(state["collections"]) == {"sentinel-2-l2a-synthetic-a"}
    assert not store.exists(trigger.PENDING_KEY)

    assert run_trigger() == 0  # nothing new

    publish_archive(store, dbname, "sentinel-2-l2a-synthetic-b", seed=2)
    assert run_trigger() == 1
    assert submission.submissions(store)[-1]["parameters"]["collection"] == "sentinel-2-l2a-synthetic-b"
    assert run_trigger() == 0
    get_settings.cache_clear()
