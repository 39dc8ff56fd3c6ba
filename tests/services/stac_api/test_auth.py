"""Protected writes: no token -> 401, bad or read-only token -> 403, and nothing is created."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import pytest

from landstack.stac_api import ApiSettings, hash_token
from landstack.stac_api.settings import ApiKey

COLLECTION = "clcplus-backbone-ras"


def test_api_keys_are_configured_as_sha256_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = hashlib.sha256(b"s3cret").hexdigest()
    monkeypatch.setenv(
        "LANDSTACK_API_KEYS", f'[{{"name": "ci", "sha256": "{digest}", "scopes": ["read", "write"]}}]'
    )
    monkeypatch.setenv("LANDSTACK_API_CORS_ORIGINS", "https://a.example, https://b.example")
    s = ApiSettings()
    assert s.keys == [ApiKey(name="ci", sha256=digest, scopes=["read", "write"])]
    assert s.cors_origins == ["https://a.example", "https://b.example"]
    assert hash_token("s3cret") == digest


def test_a_plain_token_is_refused_as_a_key_hash() -> None:
    with pytest.raises(ValueError, match="hex sha256"):
        ApiKey(name="oops", sha256="s3cret", scopes=["write"])


def _item(make_item: Any, item_id: str) -> dict[str, Any]:
    return make_item(COLLECTION, item_id, "s3://nowhere/x.tif", 2021, 5.0, 45.0)


integration = pytest.mark.integration


@integration
def test_reads_are_anonymous(api: Any) -> None:
    assert httpx.get(f"{api.url}/collections/{COLLECTION}").status_code == 200
    assert httpx.post(f"{api.url}/search", json={"limit": 1}).status_code == 200


@integration
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/collections/{c}/items", "item"),
        ("PUT", "/collections/{c}/items/{i}", "item"),
        ("DELETE", "/collections/{c}/items/imd-000", None),
        ("POST", "/collections/{c}/bulk_items", "bulk"),
        ("POST", "/collections", "collection"),
        ("DELETE", "/collections/{c}", None),
    ],
)
def test_every_write_needs_a_token(
    api: Any, make_item: Any, method: str, path: str, body: str | None
) -> None:
    item_id = f"noauth-{method.lower()}-{len(path)}"
    item = _item(make_item, item_id)
    payload: Any = None
    if body == "item":
        payload = item
    elif body == "bulk":
        payload = {"items": {item_id: item}, "method": "upsert"}
    elif body == "collection":
        payload = {**httpx.get(f"{api.url}/collections/{COLLECTION}").json(), "id": "noauth-collection"}
    url = api.url + path.format(c=COLLECTION, i=item_id)
    resp = httpx.request(method, url, json=payload)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert "bearer token" in resp.json()["description"]
    # nothing was created or deleted
    assert httpx.get(f"{api.url}/collections/{COLLECTION}/items/{item_id}").status_code == 404
    assert httpx.get(f"{api.url}/collections/noauth-collection").status_code == 404
    assert httpx.get(f"{api.url}/collections/{COLLECTION}").status_code == 200


@integration
@pytest.mark.parametrize(
    "who",
    ["unknown-key", "read-key", "jwt-no-scope", "jwt-expired", "jwt-wrong-audience", "jwt-foreign-signature"],
)
def test_bad_or_read_only_tokens_are_forbidden(
    api: Any, make_item: Any, tokens: dict[str, str], who: str
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    token = {
        "unknown-key": "not-a-key",
        "read-key": tokens["read"],
        "jwt-no-scope": api.jwt(scope="stac:read"),
        "jwt-expired": api.jwt(expires_in=-60),
        "jwt-wrong-audience": api.jwt(aud="someone-else"),
    }.get(who)
    if who == "jwt-foreign-signature":
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        import jwt

        token = jwt.encode(
            {
                "sub": "x",
                "scope": "stac:write",
                "aud": "landstack",
                "iss": "https://issuer.test",
                "exp": int(time.time()) + 60,
            },
            other,
            algorithm="RS256",
            headers={"kid": "test-key"},
        )
    item_id = f"forbidden-{who}"
    resp = httpx.post(
        f"{api.url}/collections/{COLLECTION}/items",
        json=_item(make_item, item_id),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 403, resp.text
    assert resp.json()["code"] == "Forbidden"
    assert httpx.get(f"{api.url}/collections/{COLLECTION}/items/{item_id}").status_code == 404


@integration
@pytest.mark.parametrize("credential", ["api-key", "jwt-scope", "jwt-role"])
def test_write_credentials_create_update_and_delete(
    api: Any, make_item: Any, tokens: dict[str, str], credential: str
) -> None:
    token = {
        "api-key": tokens["write"],
        "jwt-scope": api.jwt(scope="openid stac:write"),
        "jwt-role": api.jwt(scope="openid", roles=["stac:write"]),
    }[credential]
    headers = {"Authorization": f"Bearer {token}"}
    item_id = f"written-by-{credential}"
    item = _item(make_item, item_id)
    url = f"{api.url}/collections/{COLLECTION}/items"
    assert httpx.post(url, json=item, headers=headers).status_code == 201
    got = httpx.get(f"{url}/{item_id}")
    assert got.status_code == 200 and got.json()["id"] == item_id
    item["properties"]["landstack:note"] = "updated"
    assert httpx.put(f"{url}/{item_id}", json=item, headers=headers).status_code == 200
    assert httpx.get(f"{url}/{item_id}").json()["properties"]["landstack:note"] == "updated"
    assert httpx.delete(f"{url}/{item_id}", headers=headers).status_code == 200
    assert httpx.get(f"{url}/{item_id}").status_code == 404


@integration
def test_cors_allows_the_configured_origin_only(api: Any) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    ok = httpx.options(f"{api.url}/collections", headers={"Origin": "https://viewer.example", **preflight})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://viewer.example"
    bad = httpx.options(f"{api.url}/collections", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in bad.headers


@integration
def test_health_checks_the_database(api: Any) -> None:
    body = httpx.get(f"{api.url}/_mgmt/health").json()
    assert body["status"] == "UP"
    assert body["pgstac"]["status"] == "UP" and body["pgstac"]["pgstac_version"].startswith("0.10")


def test_health_is_down_without_a_database() -> None:
    from fastapi.testclient import TestClient

    from landstack.stac_api import create_app

    # Without the lifespan (no pool) the readiness probe must say DOWN, not UP.
    client = TestClient(create_app(ApiSettings(db_port=1)))
    resp = client.get("/_mgmt/health")
    assert resp.status_code == 503
    assert resp.json()["status"] == "DOWN"


def test_jwks_fetched_from_a_url(tmp_path: Any) -> None:
    """OIDC keys from a JWKS URL (a loopback server here) verify tokens; other keys do not."""
    import asyncio
    import http.server
    import json
    import threading

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    from landstack.stac_api.auth import Authenticator
    from landstack.stac_api.errors import AuthError

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "ec1", "alg": "ES256", "use": "sig"}]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        auth = Authenticator(
            ApiSettings(
                oidc_jwks_url=f"http://127.0.0.1:{server.server_port}/jwks.json",
                oidc_issuer="https://idp.test",
            )
        )
        claims = {"sub": "ci", "iss": "https://idp.test", "exp": int(time.time()) + 60, "scp": ["stac:write"]}
        token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "ec1"})
        principal = asyncio.run(auth.authenticate(token))
        assert principal.scopes == {"read", "write"} and principal.via == "oidc"
        forged = jwt.encode(
            claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "ec1"}
        )
        with pytest.raises(AuthError) as err:
            asyncio.run(auth.authenticate(forged))
        assert err.value.status == 403
    finally:
        server.shutdown()


def test_openapi_marks_exactly_the_writes_as_bearer_protected() -> None:
    from fastapi.testclient import TestClient

    from landstack.stac_api import create_app

    doc = TestClient(create_app(ApiSettings())).get("/api").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    protected = {
        (method.upper(), path)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if op.get("security")
    }
    assert protected == {
        ("POST", "/collections"),
        ("PUT", "/collections/{collection_id}"),
        ("PATCH", "/collections/{collection_id}"),
        ("DELETE", "/collections/{collection_id}"),
        ("POST", "/collections/{collection_id}/items"),
        ("PUT", "/collections/{collection_id}/items/{item_id}"),
        ("PATCH", "/collections/{collection_id}/items/{item_id}"),
        ("DELETE", "/collections/{collection_id}/items/{item_id}"),
        ("POST", "/collections/{collection_id}/bulk_items"),
    }
