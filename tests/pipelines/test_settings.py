"""Settings: the default local folder does not depend on where a command is started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from landstack.pipelines import settings as settings_module
from landstack.pipelines.settings import Settings, default_local_dir

REPO = Path(__file__).resolve().parents[2]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LANDSTACK_")}


def test_default_local_dir_is_the_checkouts_whatever_the_working_directory(tmp_path: Path) -> None:
    code = (
        "from landstack.pipelines.settings import Settings; "
        "s = Settings(); print(s.local_dir); print(s.store_url)"
    )
    for cwd in (tmp_path, REPO / "pipelines"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=cwd,
            env=_clean_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert out == [str(REPO / ".local"), (REPO / ".local" / "store").as_uri()]


def test_installed_package_defaults_to_the_users_data_folder(tmp_path: Path) -> None:
    wheel = tmp_path / "site-packages" / "landstack" / "pipelines" / "settings.py"
    assert settings_module._checkout_root(wheel) is None
    assert default_local_dir(wheel) == Path.home() / ".local" / "share" / "landstack"
    assert settings_module._checkout_root(Path(settings_module.__file__).resolve()) == REPO
    assert default_local_dir() == REPO / ".local"


def test_store_url_follows_local_dir_unless_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANDSTACK_STORE_URL", raising=False)  # `make test` exports the checkout's store
    s = Settings(local_dir=tmp_path / "here")
    assert s.store_url == (tmp_path / "here" / "store").as_uri()
    s = Settings(local_dir=tmp_path / "here", store_url="s3://bucket/prefix")
    assert s.store_url == "s3://bucket/prefix" and s.store().url == "s3://bucket/prefix"
