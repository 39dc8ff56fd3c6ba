"""Settings of a model server (environment variables with the LANDSTACK_MODEL_SERVER_ prefix).

One process serves one or several models side by side, from the registry (`registry_url` with
`model_name` + `model_version`, or a list `models` of ``name[:version]``, or every model whose name
starts with `registry_prefix`), one model file (`model_url`), or a folder on local disk (`model_dir`:
what KServe's storage initializer leaves in /mnt/models for an InferenceService's storage URI — one
registry version folder, or a release folder whose members are served side by side); the same image
serves TempCNN, U-Net and the impervious CNN because the weights carry their architecture and
metadata.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from landstack.model_server.errors import ModelSourceError
from landstack.storage import S3Settings


class ModelServerSettings(S3Settings, BaseSettings):
    """Every field can be set as LANDSTACK_MODEL_SERVER_<FIELD>."""

    model_config = SettingsConfigDict(
        env_prefix="LANDSTACK_MODEL_SERVER_", extra="ignore", protected_namespaces=()
    )

    model_name: str = Field("tempcnn", description="registry name; also the KServe model name")
    model_version: str = Field("latest", description="registry version, or 'latest'")
    registry_url: str | None = Field(None, description="object-store root of the model registry")
    model_url: str | None = Field(None, description="a model.pt file instead of the registry")
    model_dir: str | None = Field(
        None,
        description="a local folder holding one registry version (model.pt, item.json) or a release "
        "(release.json and one such folder per member), e.g. /mnt/models",
    )
    http_port: int = 8080
    grpc_port: int = 8081
    enable_grpc: bool = False
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="registry models served side by side, comma-separated name[:version] (version: latest)",
    )
    registry_prefix: str | None = Field(
        None, description="serve the latest version of every registered model whose name starts with this"
    )
    max_batch: int = Field(65536, description="largest first dimension accepted in one request")
    max_payload_bytes: int = Field(
        512 * 2**20, description="largest request body (REST answers 413) and gRPC message accepted"
    )
    device: str | None = Field(None, description="torch device; default cuda when available, else cpu")
    torch_threads: int | None = None
    chunk_size: int = Field(4096, description="samples per forward pass inside one request (bounds memory)")
    fold_batchnorm: bool = Field(True, description="merge batch norm into the convolutions at load")
    autocast: Literal["bf16", "fp16", "off"] = Field("bf16", description="reduced precision on CUDA")

    @field_validator("models", mode="before")
    @classmethod
    def _split_models(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ModelServerSettings:
        if (self.models or self.registry_prefix) and not self.registry_url:
            raise ModelSourceError(
                "LANDSTACK_MODEL_SERVER_MODELS / _REGISTRY_PREFIX name registry models: "
                "set LANDSTACK_MODEL_SERVER_REGISTRY_URL too"
            )
        if self.model_dir and (self.model_url or self.models or self.registry_prefix):
            raise ModelSourceError(
                "LANDSTACK_MODEL_SERVER_MODEL_DIR serves the one model (or the release) in that folder: "
                "leave _MODEL_URL, _MODELS and _REGISTRY_PREFIX unset with it"
            )
        if not (self.registry_url or self.model_url or self.model_dir):
            raise ModelSourceError(
                "no model source: set LANDSTACK_MODEL_SERVER_REGISTRY_URL (with _MODEL_NAME), "
                "LANDSTACK_MODEL_SERVER_MODEL_URL or LANDSTACK_MODEL_SERVER_MODEL_DIR (--model_dir)"
            )
        return self
