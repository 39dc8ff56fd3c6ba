"""Settings of the pipelines and the CLI (environment variables with the LANDSTACK_ prefix).

The same code runs on a laptop and in the cluster: only these settings change (object store URL
and S3 endpoint, database, STAC API and model-server URLs).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from landstack.storage import ObjectStore, S3Settings


def _checkout_root(here: Path) -> Path | None:
    """The source checkout this module runs from (editable install), or None for an installed wheel."""
    for parent in here.parents:
        if (parent / "pipelines" / "pyproject.toml").is_file() and (parent / "catalog").is_dir():
            return parent
    return None


def default_local_dir(module_file: Path | None = None) -> Path:
    """`<checkout>/.local` when running from a source checkout, else `~/.local/share/landstack`.

    Found from this package's own location (`module_file`, default this module), so it does not
    depend on the working directory.
    """
    root = _checkout_root((module_file or Path(__file__)).resolve())
    return root / ".local" if root else Path.home() / ".local" / "share" / "landstack"


def _default_store_url(data: dict[str, Any]) -> str:
    local = Path(data.get("local_dir") or default_local_dir())
    return (local / "store").resolve().as_uri()


class Settings(S3Settings, BaseSettings):
    """Pipeline settings; every field can be set as LANDSTACK_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="LANDSTACK_", extra="ignore")

    local_dir: Path = Field(
        # a lambda: pydantic would pass the validated data to a factory that takes an argument
        default_factory=lambda: default_local_dir(),
        description=(
            "project-local folder for services, data and logs; default: the source checkout's .local "
            "(found from the installed package's location, whatever the working directory) or, for an "
            "installed package, ~/.local/share/landstack"
        ),
    )
    store_url: str = Field(
        default_factory=_default_store_url,
        description="Root of the object store: file:///path or s3://bucket/prefix; default <local_dir>/store",
    )

    stac_api_url: str = Field("http://127.0.0.1:55081", description="STAC API that publish writes to")
    stac_api_token: SecretStr | None = Field(None, description="bearer token for STAC API transactions")

    pg_host: str = "127.0.0.1"
    pg_port: int = 55432
    pg_user: str = "postgres"
    pg_password: SecretStr = SecretStr("postgres")
    pg_database: str = "landstack"

    stac_schemas_dir: Path | None = Field(
        None,
        description="offline STAC schemas (core + extensions); default ../shared/schemas/stac if present",
    )

    workflow_backend: Literal["local", "argo"] = Field(
        "local",
        description="where submitted workflows run: the local runner, or Argo through the Argo Server API",
    )
    workflow_local_start: bool = Field(
        True, description="local backend: start the submitted run in the background (false: only record it)"
    )
    argo_server_url: str | None = Field(
        None, description="Argo Server URL, e.g. https://argo-server.argo:2746"
    )
    argo_namespace: str = Field("landstack", description="namespace of the WorkflowTemplates")
    argo_token: SecretStr | None = Field(None, description="bearer token for the Argo Server API")
    argo_verify_ssl: bool = True

    @property
    def pg_dsn(self) -> str:
        """libpq connection string for pgstac."""
        pw = self.pg_password.get_secret_value()
        return f"postgresql://{self.pg_user}:{pw}@{self.pg_host}:{self.pg_port}/{self.pg_database}"

    def store(self) -> ObjectStore:
        """The object store configured by LANDSTACK_STORE_URL and the LANDSTACK_S3_* settings."""
        return ObjectStore(self.store_url, self.s3())


@functools.cache
def get_settings() -> Settings:
    """Process-wide settings, read once from the environment."""
    return Settings()
