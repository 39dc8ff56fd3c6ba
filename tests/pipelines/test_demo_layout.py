"""The demo takes the archive's collection id from the synthetic archive and its keys from the layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from landstack.pipelines import demo, synth
from landstack.pipelines.demo import DemoConfig, DemoResult, summary
from landstack.storage import ObjectStore, layout


def test_archive_goes_under_the_layout_prefix_of_its_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, str]] = []

    def fake_write_archive(cfg: Any, store: ObjectStore, prefix: str) -> str:
        calls.append((cfg, prefix))
        return "written"

    monkeypatch.setattr(synth, "write_archive", fake_write_archive)
    cfg, written = demo._archive(ObjectStore(tmp_path.as_uri()), DemoConfig(), log=lambda _: None)
    assert written == "written"
    assert calls == [(cfg, layout.archive_prefix(cfg.collection_id))]
    assert cfg.collection_id == synth.SynthConfig.__dataclass_fields__["collection_id"].default


def test_summary_ends_with_where_to_look() -> None:
    result = DemoResult(
        api_url="http://127.0.0.1:1",
        map_url="http://127.0.0.1:2/map",
        archive_collection="my-archive",
        archive_prefix=layout.archive_prefix("my-archive"),
        store_url="file:///s",
        trained={"tempcnn": "cached"},
        production={"families": {"cisc": {"tiles": 1, "layers": 2, "items": 2, "overall_accuracy": 0.5}}},
    )
    lines = summary(result).splitlines()
    assert lines[-2] == "Map: http://127.0.0.1:2/map?collection=clcplus-backbone-ras"
    assert lines[-1] == "STAC API: http://127.0.0.1:1"
    assert any(line.startswith("cisc") and "overall_accuracy 0.500" in line for line in lines)
    assert "  tempcnn: cached" in lines
    assert demo.SAMPLES_KEY.startswith(layout.SAMPLES + "/")
