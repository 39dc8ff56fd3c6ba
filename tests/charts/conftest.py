"""Fixtures of the chart tests: helm from .tools/bin (or PATH) and a renderer of the chart."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "landstack"

Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of the helm binary, or skip with the way to install it."""
    found = shutil.which("helm") or str(REPO / ".tools" / "bin" / "helm")
    if not Path(found).exists():
        pytest.skip("helm is not installed: run 'make setup' (installs helm into .tools/bin)")
    return found


@pytest.fixture(scope="session")
def render(helm: str) -> Render:
    """`render(*helm_args, chart=CHART)` -> the rendered manifests (hooks included).

    Renders are cached per arguments for the session (helm is slow on a busy machine); each call
    gets its own copy.
    """
    cache: dict[tuple[str, ...], str] = {}

    def _render(*args: str, chart: Path = CHART) -> list[dict[str, Any]]:
        key = (str(chart), *args)
        if key not in cache:
            proc = subprocess.run(
                [helm, "template", "rel", str(chart), "--namespace", "landstack", *args],
                capture_output=True,
                text=True,
            )
            assert proc.returncode == 0, proc.stderr
            cache[key] = proc.stdout
        return [d for d in yaml.safe_load_all(cache[key]) if d]

    return _render
