"""Settings of the tiler service (environment variables with the LANDSTACK_TILER_ prefix).

The pgstac database, where the STAC API and the web-map libraries are, and how GDAL reaches the
object store all come from here; nothing else in the service reads the environment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from landstack.storage import S3Settings


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):
            return json.loads(value)
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class TilerSettings(S3Settings, BaseSettings):
    """Tiler settings; every field can be set as LANDSTACK_TILER_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="LANDSTACK_TILER_", extra="ignore")

    db_host: str = "127.0.0.1"
    db_port: int = 55432
    db_user: str = "postgres"
    db_password: SecretStr = SecretStr("postgres")
    db_name: str = "landstack"
    db_min_connections: int = 1
    db_max_connections: int = 10

    host: str = "127.0.0.1"
    port: int = 55082
    root_path: str = Field("", description="public path prefix when served behind a proxy, e.g. /tiles")
    cors_origins: Annotated[list[str], NoDecode, BeforeValidator(_comma_list)] = ["*"]
    cache_control: str = "public, max-age=3600"

    api_url: str = Field(
        "http://127.0.0.1:55081", description="public URL of the STAC API the web map lists collections from"
    )
    web_libs_dir: Path = Field(
        Path(".tools/web/node_modules"),
        description="node_modules folder holding leaflet (npm install leaflet); served under /map/libs",
    )

    max_aoi_km2: float = Field(
        250_000.0, gt=0, description="largest AOI the statistics endpoint accepts (it reads native pixels)"
    )
    max_items: int = Field(500, gt=0, description="most items one statistics request may read per year")

    @property
    def dsn(self) -> str:
        """libpq connection string of the pgstac database."""
        pw = self.db_password.get_secret_value()
        return f"postgresql://{self.db_user}:{pw}@{self.db_host}:{self.db_port}/{self.db_name}"
