"""Shared test fixtures: the location of ../shared and its offline schema validators."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests read reference data from ../shared beside the repository")
    return path


@pytest.fixture(scope="session")
def schemas() -> ModuleType:
    """../shared/tools/schemas.py (offline STAC, ISO 19139, Argo, KServe, Kubernetes validators)."""
    path = shared_path("tools", "schemas.py")
    spec = importlib.util.spec_from_file_location("shared_schemas", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
