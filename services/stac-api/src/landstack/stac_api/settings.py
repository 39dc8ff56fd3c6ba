"""Settings of the STAC API service (environment variables with the LANDSTACK_API_ prefix).

The database, the API keys allowed to write, the OIDC issuer whose tokens may write, CORS and the
public path all come from here; nothing else in the service reads the environment.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from landstack.storage import S3Settings

Scope = Literal["read", "write"]


class ApiKey(BaseModel):
    """One API key, stored only as the hex sha256 of the token clients present."""

    name: str = "key"
    sha256: str = Field(..., description="hex sha256 of the bearer token")
    scopes: list[Scope] = ["read"]

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, v: str) -> str:
        v = v.strip().lower()
        if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
            raise ValueError("must be the 64-character hex sha256 of the token (sha256sum of the token)")
        return v


def hash_token(token: str) -> str:
    """The value to configure in ApiKey.sha256 for a bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):
            return json.loads(value)
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _key_list(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return json.loads(value) if value else []
    return value


class ApiSettings(S3Settings, BaseSettings):
    """STAC API settings; every field can be set as LANDSTACK_API_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="LANDSTACK_API_", extra="ignore")

    db_host: str = "127.0.0.1"
    db_port: int = 55432
    db_user: str = "postgres"
    db_password: SecretStr = SecretStr("postgres")
    db_name: str = "landstack"
    db_min_connections: int = 1
    db_max_connections: int = 10

    keys: Annotated[list[ApiKey], NoDecode, BeforeValidator(_key_list)] = Field(
        default_factory=list,
        description='JSON list of {"name", "sha256", "scopes": ["read"|"write"]}; tokens are never stored',
    )
    oidc_jwks_url: str | None = Field(
        None, description="JWKS of the OIDC issuer whose access tokens may write"
    )
    oidc_jwks_file: Path | None = Field(None, description="local JWKS file (instead of oidc_jwks_url)")
    oidc_audience: str | None = None
    oidc_issuer: str | None = None
    oidc_algorithms: Annotated[list[str], NoDecode, BeforeValidator(_comma_list)] = ["RS256", "ES256"]
    oidc_write_scope: str = Field(
        "stac:write", description="scope (scope/scp claim) or role (roles claim) a token needs to write"
    )

    cors_origins: Annotated[list[str], NoDecode, BeforeValidator(_comma_list)] = ["*"]
    root_path: str = Field("", description="public path prefix when served behind a proxy, e.g. /stac")
    host: str = "127.0.0.1"
    port: int = 55081
    api_hydrate: bool = Field(
        True,
        description="merge items with their collection's item_assets in the API, not in PostgreSQL "
        "(the database is the bottleneck under concurrent searches)",
    )
    workers: int = Field(1, ge=1, description="uvicorn worker processes (about one per CPU core)")
    title: str = "landstack STAC API"
    description: str = (
        "Land-cover and imperviousness layers derived from Sentinel-2, as STAC collections and items"
    )

    store_url: str | None = Field(
        None,
        description="object store root (file:// or s3://) of the published assets; asset hrefs under it "
        "are answered with a URL a client on another machine can fetch",
    )
    asset_base_url: str | None = Field(
        None,
        description="public https base URL of the store root (public bucket or CDN): an asset at "
        "<store_url>/<key> is answered as <asset_base_url>/<key>",
    )
    asset_presign_seconds: int = Field(
        0, ge=0, description="> 0: answer s3:// assets as presigned https URLs valid this many seconds"
    )
    serve_store: bool = Field(
        False,
        description="serve the store read-only (with HTTP range requests) at <api>/store/<key> and "
        "answer asset hrefs with that route (local use; the cluster uses asset_base_url or presigning)",
    )
    store_public_prefixes: Annotated[list[str], NoDecode, BeforeValidator(_comma_list)] = Field(
        ["products", "catalog", "archive"], description="store prefixes /store may serve"
    )
    tiler_url: str | None = Field(
        None, description="public base URL of the tiler; items get xyz/wmts links, collections tile links"
    )

    @property
    def dsn(self) -> str:
        """libpq connection string of the pgstac database."""
        pw = self.db_password.get_secret_value()
        return f"postgresql://{self.db_user}:{pw}@{self.db_host}:{self.db_port}/{self.db_name}"

    @property
    def writes_configured(self) -> bool:
        """True when some credential may write (otherwise every write is refused)."""
        return any("write" in k.scopes for k in self.keys) or bool(self.oidc_jwks_url or self.oidc_jwks_file)
