"""The model server loads its model from an S3 registry (moto) through the object-store layer."""

from __future__ import annotations

import socket
import sys
import uuid
from pathlib import Path

import pytest
import s3fs

from landstack.model_server.predictor import LandstackModel
from landstack.model_server.settings import ModelServerSettings
from landstack.models.registry import register_model
from landstack.storage import S3Options

sys.path.insert(0, str(Path(__file__).parent))
import tiny_models as tm

pytestmark = pytest.mark.integration
MOTO = ("127.0.0.1", 55900)
ENDPOINT = f"http://{MOTO[0]}:{MOTO[1]}"


@pytest.fixture(scope="module")
def s3_registry() -> str:
    try:
        socket.create_connection(MOTO, timeout=1).close()
    except OSError as e:
        pytest.skip(f"moto S3 at {ENDPOINT} is not reachable ({e}); start it with `landstack services up`")
    bucket = f"model-server-{uuid.uuid4().hex[:8]}"
    s3fs.S3FileSystem(endpoint_url=ENDPOINT, key="testing", secret="testing").mkdir(bucket)
    root = f"s3://{bucket}/registry"
    s3 = S3Options(endpoint_url=ENDPOINT, access_key_id="testing", secret_access_key="testing")
    model, meta = tm.build(tm.TEMPCNN)
    register_model(root, model, meta, s3=s3)
    return root


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> ModelServerSettings:
    for key, value in env.items():
        monkeypatch.setenv(f"LANDSTACK_MODEL_SERVER_{key}", value)
    return ModelServerSettings()


def test_settings_give_the_s3_options(monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings(
        monkeypatch,
        REGISTRY_URL="s3://b/r",
        S3_ENDPOINT_URL=ENDPOINT,
        S3_ACCESS_KEY_ID="k",
        S3_SECRET_ACCESS_KEY="s",
        S3_REGION="eu-central-1",
    )
    opts = s.s3().fsspec_options()
    assert opts["endpoint_url"] == ENDPOINT and opts["key"] == "k" and opts["secret"] == "s"
    assert opts["client_kwargs"] == {"region_name": "eu-central-1"}


def test_loads_a_registered_model_from_s3(s3_registry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings(
        monkeypatch,
        REGISTRY_URL=s3_registry,
        MODEL_NAME=tm.TEMPCNN,
        S3_ENDPOINT_URL=ENDPOINT,
        S3_ACCESS_KEY_ID="testing",
        S3_SECRET_ACCESS_KEY="testing",
        DEVICE="cpu",
    )
    model = LandstackModel(s)
    assert model.load() and model.ready
    assert model.metadata["name"] == tm.TEMPCNN and model.metadata["input"]["time_steps"] == 54
    s3_model_url = f"{s3_registry}/models/{tm.TEMPCNN}/0.0.1/model.pt"
    monkeypatch.delenv("LANDSTACK_MODEL_SERVER_REGISTRY_URL")
    by_url = LandstackModel(_settings(monkeypatch, MODEL_URL=s3_model_url))
    assert by_url.load() and by_url.metadata == model.metadata
