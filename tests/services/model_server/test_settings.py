"""Model-server settings and command line: sources, flags over settings, KServe's own parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from landstack.model_server.__main__ import build_parser, settings_from_args
from landstack.model_server.errors import ModelSourceError
from landstack.model_server.settings import ModelServerSettings
from landstack.model_server.sources import ModelRef, model_refs, parse_ref


def test_settings_need_a_model_source() -> None:
    with pytest.raises(ModelSourceError, match="LANDSTACK_MODEL_SERVER_REGISTRY_URL"):
        ModelServerSettings(_env_file=None)


def test_model_list_needs_a_registry() -> None:
    with pytest.raises(ModelSourceError, match="REGISTRY_URL too"):
        ModelServerSettings(models=["a"], model_url="file:///x.pt")


def test_models_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANDSTACK_MODEL_SERVER_REGISTRY_URL", "file:///tmp/reg")
    monkeypatch.setenv("LANDSTACK_MODEL_SERVER_MODELS", "tempcnn-a, tempcnn-b:1.2")
    refs = model_refs(ModelServerSettings())
    assert refs == [ModelRef("tempcnn-a", "latest"), ModelRef("tempcnn-b", "1.2")]


def test_one_version_per_name() -> None:
    s = ModelServerSettings(registry_url="file:///tmp/reg", models=["a:1", "a:2"])
    with pytest.raises(ModelSourceError, match="listed twice"):
        model_refs(s)
    with pytest.raises(ModelSourceError, match="no name"):
        parse_ref(":1")


def test_flags_override_settings_and_reuse_kserve_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANDSTACK_MODEL_SERVER_REGISTRY_URL", "file:///tmp/reg")
    monkeypatch.setenv("LANDSTACK_MODEL_SERVER_HTTP_PORT", "9123")
    monkeypatch.setenv("LANDSTACK_MODEL_SERVER_MODEL_NAME", "from-env")
    settings, args = settings_from_args(["--model_name", "from-flag", "--max_batch", "7"])
    assert settings.model_name == "from-flag" and settings.max_batch == 7
    assert settings.http_port == 9123  # flag absent: the setting stays
    assert settings.enable_grpc is False  # KServe's parser default (True) does not override the setting
    assert args.grpc_max_receive_message_length == settings.max_payload_bytes
    flags = [a.option_strings for a in build_parser()._actions]
    assert sum("--model_name" in f for f in flags) == 1 and any("--workers" in f for f in flags)


def test_missing_model_file_fails_loading_with_its_name(tmp_path: Path) -> None:
    from landstack.model_server.predictor import LandstackModel

    model = LandstackModel(ModelServerSettings(model_url=str(tmp_path / "none.pt")))
    with pytest.raises(ModelSourceError, match=r"none\.pt"):
        model.load()
