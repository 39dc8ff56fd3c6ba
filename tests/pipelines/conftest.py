"""Fixtures of the pipeline tests: a small synthetic Sentinel-2 archive shared by the modules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from landstack.pipelines.store import ObjectStore
from landstack.pipelines.synth import Aoi, SynthConfig, SynthResult, write_archive

# About 1.2 km x 1.2 km near Vienna (UTM 33N); a year and a half of acquisitions every 15 days.
SMALL_AOI = Aoi.around(16.3, 48.2, 1200)
REFERENCE_YEAR = 2023


@pytest.fixture(scope="session")
def s2_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[ObjectStore, SynthResult, SynthConfig]:
    """A synthetic archive (earth-search asset names) in a file:// store."""
    root: Path = tmp_path_factory.mktemp("s2store")
    store = ObjectStore(root.as_uri())
    cfg = SynthConfig(
        aoi=SMALL_AOI,
        start=dt.date(2022, 10, 1),
        end=dt.date(2024, 3, 31),
        seed=11,
        revisit_days=15,
        points_per_class=12,
    )
    return store, write_archive(cfg, store, "archive"), cfg
