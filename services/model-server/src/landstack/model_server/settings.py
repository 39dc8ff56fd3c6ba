"""Settings of a model server (environment variables with the LANDSTACK_MODEL_SERVER_ prefix).

A server hosts one model from the registry (`registry_url` + `model_name` + `model_version`) or
one model file (`model_url`); the same image serves TempCNN, U-Net and the impervious CNN because
the weights carry their architecture and metadata.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from landstack.model_server.errors import ModelSourceError


class ModelServerSettings(BaseSettings):
    """Every field can be set as LANDSTACK_MODEL_SERVER_<FIELD>."""

    model_config = SettingsConfigDict(
        env_prefix="LANDSTACK_MODEL_SERVER_", extra="ignore", protected_namespaces=()
    )

    model_name: str = Field("tempcnn", description="registry name; also the KServe model name")
    model_version: str = Field("latest", description="registry version, or 'latest'")
    registry_url: str | None = Field(None, description="object-store root of the model registry")
    model_url: str | None = Field(None, description="a model.pt file instead of the registry")
    http_port: int = 8080
    grpc_port: int = 8081
    enable_grpc: bool = False
    max_batch: int = Field(65536, description="largest first dimension accepted in one request")
    device: str | None = Field(None, description="torch device; default cuda when available, else cpu")
    torch_threads: int | None = None

    s3_endpoint_url: str | None = None
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"

    @model_validator(mode="after")
    def _one_source(self) -> ModelServerSettings:
        if not (self.registry_url or self.model_url):
            raise ModelSourceError(
                "no model source: set LANDSTACK_MODEL_SERVER_REGISTRY_URL (with _MODEL_NAME) "
                "or LANDSTACK_MODEL_SERVER_MODEL_URL"
            )
        return self

    def storage_options(self, url: str) -> dict[str, object]:
        """fsspec options for an s3:// source (nothing for local files)."""
        if not url.startswith("s3://"):
            return {}
        opts: dict[str, object] = {"client_kwargs": {"region_name": self.s3_region}}
        if self.s3_endpoint_url:
            opts["endpoint_url"] = self.s3_endpoint_url
        if self.s3_access_key_id and self.s3_secret_access_key:
            opts["key"] = self.s3_access_key_id.get_secret_value()
            opts["secret"] = self.s3_secret_access_key.get_secret_value()
        return opts
