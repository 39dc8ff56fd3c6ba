"""A model server fed one registry version folder (`--model_dir`), as KServe's storage initializer
leaves an InferenceService's storage URI in /mnt/models: name and version from the folder's files,
weights only in `load`, and errors that say what to point the storage URI at."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from landstack.model_server.__main__ import settings_from_args
from landstack.model_server.errors import ModelSourceError
from landstack.model_server.predictor import LandstackModel
from landstack.model_server.settings import ModelServerSettings
from landstack.model_server.sources import ModelRef, model_refs


@pytest.fixture(scope="module")
def version_folder(
    tmp_path_factory: pytest.TempPathFactory, register_tiny_tempcnn: Callable[[Path, str], dict[str, Any]]
) -> Path:
    """A copy of one registered version folder (what the storage initializer downloads)."""
    store = tmp_path_factory.mktemp("store")
    meta = register_tiny_tempcnn(store, "tempcnn-dir")
    mounted = tmp_path_factory.mktemp("mnt") / "models"
    shutil.copytree(store / "models" / "tempcnn-dir" / meta["version"], mounted)
    return mounted


def test_folder_names_the_model_and_version_without_loading_weights(version_folder: Path) -> None:
    settings, _ = settings_from_args(["--model_dir", str(version_folder)])
    assert settings.model_dir == str(version_folder) and settings.registry_url is None
    refs = model_refs(settings)
    assert refs == [ModelRef("tempcnn-dir", "0.0.1", folder=str(version_folder))]
    model = LandstackModel(settings, refs[0])
    assert model.name == "tempcnn-dir" and model.version == "0.0.1" and model.engine is None
    assert model.load() and model.ready
    assert model.describe()["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 12, 54]}]


def test_folder_from_the_environment(version_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANDSTACK_MODEL_SERVER_MODEL_DIR", str(version_folder))
    monkeypatch.setenv("LANDSTACK_MODEL_SERVER_MODEL_NAME", "tempcnn-dir")
    assert model_refs(ModelServerSettings())[0].name == "tempcnn-dir"


def test_a_named_model_must_be_the_folder_s_model(version_folder: Path) -> None:
    settings = ModelServerSettings(model_dir=str(version_folder), model_name="unet-imd")
    with pytest.raises(ModelSourceError, match=r"holds model 'tempcnn-dir'.*models/unet-imd/<version>/"):
        model_refs(settings)


def test_missing_or_empty_folder_says_what_the_storage_uri_must_name(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match=r"does not exist; .*s3://bucket/models/<name>/<version>/"):
        model_refs(ModelServerSettings(model_dir=str(tmp_path / "absent")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelSourceError, match=r"holds no model\.pt nor release\.json \(found nothing\)"):
        model_refs(ModelServerSettings(model_dir=str(tmp_path / "empty")))


def test_a_model_s_folder_instead_of_a_version_folder_is_named(version_folder: Path, tmp_path: Path) -> None:
    shutil.copytree(version_folder, tmp_path / "tempcnn-dir" / "0.0.1")
    with pytest.raises(ModelSourceError, match=r"version folders \['0.0.1'\].*add the version"):
        model_refs(ModelServerSettings(model_dir=str(tmp_path / "tempcnn-dir")))


def test_folder_without_item_takes_the_version_from_the_weights(version_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    shutil.copy(version_folder / "model.pt", folder / "model.pt")
    settings = ModelServerSettings(model_dir=str(folder), model_name="tempcnn-dir")
    model = LandstackModel(settings, model_refs(settings)[0])
    assert model.version == ""  # known once the weights are read
    model.load()
    assert model.version == "0.0.1"


def test_folder_excludes_the_other_sources(version_folder: Path) -> None:
    with pytest.raises(ModelSourceError, match="MODEL_DIR serves the one model"):
        ModelServerSettings(model_dir=str(version_folder), model_url="file:///x.pt")
