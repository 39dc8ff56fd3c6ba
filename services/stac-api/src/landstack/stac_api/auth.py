"""Protected writes: bearer API keys (stored hashed) and OIDC access tokens checked against a JWKS.

Reads stay anonymous. A write without credentials is answered 401 with `WWW-Authenticate: Bearer`;
an unknown, expired or read-only credential is answered 403. The check runs as a route dependency,
so a refused request never reaches the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from landstack.stac_api.errors import AuthError, ConfigError
from landstack.stac_api.settings import ApiSettings

_bearer = HTTPBearer(auto_error=False, description="API key or OIDC access token with the write scope")


@dataclass(frozen=True)
class Principal:
    """Who made a request and what it may do."""

    subject: str
    scopes: frozenset[str]
    via: str  # "api-key" or "oidc"


class Authenticator:
    """Checks bearer tokens against the configured API key hashes and OIDC JWKS."""

    def __init__(self, settings: ApiSettings) -> None:
        self.s = settings
        self._keys = [(k.sha256.encode(), k) for k in settings.keys]
        self._jwks: jwt.PyJWKSet | None = None
        self._jwks_client: jwt.PyJWKClient | None = None
        if settings.oidc_jwks_file is not None:
            try:
                self._jwks = jwt.PyJWKSet.from_dict(json.loads(settings.oidc_jwks_file.read_text()))
            except (OSError, ValueError, jwt.PyJWKSetError) as e:
                raise ConfigError(
                    f"cannot load the JWKS {settings.oidc_jwks_file}: {e}; "
                    "set LANDSTACK_API_OIDC_JWKS_FILE to a JSON Web Key Set file"
                ) from e
        elif settings.oidc_jwks_url:
            self._jwks_client = jwt.PyJWKClient(settings.oidc_jwks_url, cache_jwk_set=True, lifespan=300)

    @property
    def oidc_enabled(self) -> bool:
        return self._jwks is not None or self._jwks_client is not None

    async def authenticate(self, token: str) -> Principal:
        """The principal behind a bearer token; AuthError(403) when it is not valid."""
        if self.oidc_enabled and token.count(".") == 2:
            return await self._from_jwt(token)
        return self._from_api_key(token)

    def _from_api_key(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).hexdigest().encode()
        found = None
        # Compare against every key so the time taken does not reveal which prefix matched.
        for stored, key in self._keys:
            if hmac.compare_digest(stored, digest):
                found = key
        if found is None:
            raise AuthError(403, "the bearer token is not a known API key", "invalid_token")
        return Principal(found.name, frozenset(found.scopes), "api-key")

    async def _from_jwt(self, token: str) -> Principal:
        try:
            if self._jwks_client is not None:
                # PyJWKClient fetches over blocking HTTP: keep it off the event loop.
                key = (await asyncio.to_thread(self._jwks_client.get_signing_key_from_jwt, token)).key
            else:
                assert self._jwks is not None
                kid = jwt.get_unverified_header(token).get("kid")
                key = self._jwks[kid].key if kid else self._jwks.keys[0].key
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=self.s.oidc_algorithms,
                audience=self.s.oidc_audience,
                issuer=self.s.oidc_issuer,
                options={"require": ["exp"], "verify_aud": self.s.oidc_audience is not None},
            )
        except (jwt.PyJWTError, KeyError) as e:
            raise AuthError(403, f"the access token was refused: {e}", "invalid_token") from e
        return Principal(str(claims.get("sub", "?")), _scopes_of(claims, self.s.oidc_write_scope), "oidc")


def _scopes_of(claims: dict[str, Any], write_scope: str) -> frozenset[str]:
    granted: set[str] = set()
    scope = claims.get("scope")
    if isinstance(scope, str):
        granted.update(scope.split())
    for claim in ("scp", "roles"):
        value = claims.get(claim)
        if isinstance(value, str):
            granted.update(value.split())
        elif isinstance(value, list):
            granted.update(str(v) for v in value)
    scopes = {"read"}
    if write_scope in granted:
        scopes.add("write")
    return frozenset(scopes)


async def require_write(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    """Route dependency of every transaction endpoint: a bearer token with the write scope."""
    if credentials is None or not credentials.credentials:
        raise AuthError(
            401, "writes need a bearer token (Authorization: Bearer <API key or access token>)", ""
        )
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(credentials.credentials)
    if "write" not in principal.scopes:
        raise AuthError(403, f"{principal.via} {principal.subject!r} may only read", "insufficient_scope")
    return principal


# Every route the transaction and bulk transaction extensions add.
WRITE_ROUTES: list[dict[str, str]] = [
    {"path": "/collections", "method": "POST"},
    {"path": "/collections/{collection_id}", "method": "PUT"},
    {"path": "/collections/{collection_id}", "method": "PATCH"},
    {"path": "/collections/{collection_id}", "method": "DELETE"},
    {"path": "/collections/{collection_id}/items", "method": "POST"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "PUT"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "PATCH"},
    {"path": "/collections/{collection_id}/items/{item_id}", "method": "DELETE"},
    {"path": "/collections/{collection_id}/bulk_items", "method": "POST"},
]
