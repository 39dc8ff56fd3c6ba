"""The Hera workflows, one module per workflow, each with its rendered YAML committed beside it.

The rendered YAML is the one source of truth for what runs: Argo runs it in the cluster (the Helm
chart ships it), and the local runner runs the very same files on one machine. A test renders
the modules again and fails when the committed files drift.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from landstack.pipelines.runner.errors import WorkflowNotFoundError

FOLDER = Path(__file__).parent


def _builders() -> dict[str, Callable[[], Any]]:
    from landstack.pipelines.workflows import production, training, trigger

    builders: dict[str, Callable[[], Any]] = {m.NAME: m.build for m in (production, training, trigger)}
    builders[training.PATCHES_NAME] = training.build_patches
    return builders


def names() -> list[str]:
    """The workflow names, e.g. landstack-production."""
    return sorted(_builders())


def render(name: str) -> str:
    """The YAML of one workflow, rendered from its Hera module."""
    builders = _builders()
    if name not in builders:
        raise WorkflowNotFoundError(f"no workflow {name!r}; the workflows are {', '.join(sorted(builders))}")
    header = "# Rendered from landstack.pipelines.workflows by `landstack workflow render`; do not edit.\n"
    return header + str(builders[name]().to_yaml())


def rendered_path(name: str) -> Path:
    """Where the committed rendered YAML of a workflow lives."""
    return FOLDER / f"{name}.yaml"


def write_rendered() -> list[Path]:
    """Render every workflow to its committed YAML file; returns the paths."""
    paths = []
    for name in names():
        path = rendered_path(name)
        path.write_text(render(name))
        paths.append(path)
    return paths


def load(name: str) -> dict[str, Any]:
    """The committed rendered manifest of a workflow (what Argo and the local runner run)."""
    path = rendered_path(name)
    if not path.is_file():
        raise WorkflowNotFoundError(
            f"no rendered workflow {name!r} at {path}; the workflows are {', '.join(names())} "
            "(run `landstack workflow render` after adding one)"
        )
    return dict(yaml.safe_load(path.read_text()))
