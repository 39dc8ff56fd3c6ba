"""Settings of the pipelines and the CLI (environment variables with the LANDSTACK_ prefix).

The same code runs on a laptop and in the cluster: only these settings change (object store URL
and S3 endpoint, database, STAC API and model-server URLs).
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_LOCAL = Path.cwd() / ".local"


class Settings(BaseSettings):
    """Pipeline settings; every field can be set as LANDSTACK_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="LANDSTACK_", extra="ignore")

    store_url: str = Field(
        default_factory=lambda: (_LOCAL / "store").resolve().as_uri(),
        description="Root of the object store: file:///path or s3://bucket/prefix",
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint, e.g. http://127.0.0.1:9000 (moto, MinIO)"
    )
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"

    stac_api_url: str = Field("http://127.0.0.1:55081", description="STAC API that publish writes to")
    stac_api_token: SecretStr | None = Field(None, description="bearer token for STAC API transactions")

    pg_host: str = "127.0.0.1"
    pg_port: int = 55432
    pg_user: str = "postgres"
    pg_password: SecretStr = SecretStr("postgres")
    pg_database: str = "landstack"

    local_dir: Path = Field(_LOCAL, description="project-local folder for services, data and logs")
    stac_schemas_dir: Path | None = Field(
        None,
        description="offline STAC schemas (core + extensions); default ../shared/schemas/stac if present",
    )

    @property
    def pg_dsn(self) -> str:
        """libpq connection string for pgstac."""
        pw = self.pg_password.get_secret_value()
        return f"postgresql://{self.pg_user}:{pw}@{self.pg_host}:{self.pg_port}/{self.pg_database}"

    def storage_options(self) -> dict[str, object]:
        """fsspec options for the store URL (s3fs endpoint and credentials; nothing for file://)."""
        if not self.store_url.startswith("s3://"):
            return {}
        opts: dict[str, object] = {"client_kwargs": {"region_name": self.s3_region}}
        if self.s3_endpoint_url:
            opts["endpoint_url"] = self.s3_endpoint_url
        if self.s3_access_key_id and self.s3_secret_access_key:
            opts["key"] = self.s3_access_key_id.get_secret_value()
            opts["secret"] = self.s3_secret_access_key.get_secret_value()
        return opts


@functools.cache
def get_settings() -> Settings:
    """Process-wide settings, read once from the environment."""
    return Settings()
