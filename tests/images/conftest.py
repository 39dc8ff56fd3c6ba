"""Fixtures of the image tests: the build tooling (.ci/images.py), podman, and built images.

Images are built through the tooling, which skips a build whose content tag already exists, so
only a change to an image's inputs costs a build.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def images() -> ModuleType:
    """The image tooling module (.ci/images.py)."""
    path = REPO / ".ci" / "images.py"
    spec = importlib.util.spec_from_file_location("landstack_ci_images", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def podman(images: ModuleType) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`podman(*args)` with the project's containers.conf, or skip with why podman cannot run here."""
    if not shutil.which("podman"):
        pytest.skip("podman is not installed: run 'make images-setup' (Debian packages podman, runc, ...)")
    if not images.CONTAINERS_CONF.exists():
        pytest.skip(f"{images.CONTAINERS_CONF} is missing: run 'make images-setup'")
    if not images.image_exists(images.BASE_IMAGE):
        pytest.skip(f"the base image {images.BASE_IMAGE} is missing: run 'make images-setup'")
    probe = images.podman("run", "--rm", "--network=none", images.BASE_IMAGE, "true", check=False)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run containers on this machine: {probe.stderr.strip()[-300:]}")
    return images.podman


@pytest.fixture(scope="session")
def built(images: ModuleType, podman: object) -> Callable[[str], str]:
    """`built(name)` -> the local tag of the image, built first when its inputs changed."""
    refs: dict[str, str] = {}

    def _built(name: str) -> str:
        if name not in refs:
            try:
                refs[name] = images.build(name)
            except images.ImageError as e:  # a build input is missing here (e.g. Leaflet, torch's wheel)
                pytest.skip(f"the {name} image cannot be built here: {e}")
        return refs[name]

    return _built


@pytest.fixture(scope="session")
def pgstac_up() -> None:
    """Skip unless the local PostgreSQL+pgstac answers on 127.0.0.1:55432."""
    try:
        socket.create_connection(("127.0.0.1", 55432), timeout=1).close()
    except OSError:
        pytest.skip("PostgreSQL+pgstac is not running on 127.0.0.1:55432: run 'landstack services up'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> Callable[[], int]:
    """`port()` -> a free TCP port on the loopback interface."""
    return _free_port
