"""The resource-server mode's pure pieces: off by default, the RFC 9728 metadata URL, and
which provider tokens are bound to another endpoint."""

from __future__ import annotations

import jwt
import pytest

from mcp_front.edge import responses
from mcp_front.edge.oauth import ResourceServer
from tests.conftest import make_settings

ENDPOINT = "https://gw.example.com/acme/seo/mcp"


def test_off_by_default_and_needs_an_authorization_server() -> None:
    assert ResourceServer.from_settings(make_settings("sqlite+aiosqlite://")) is None
    assert "resource_metadata" not in responses.unauthorized("missing bearer token").headers["www-authenticate"]
    with pytest.raises(ValueError):
        ResourceServer.from_settings(make_settings("sqlite+aiosqlite://", MONOMCP_OAUTH_RESOURCE_SERVER=True))


def test_metadata_url_and_document() -> None:
    server = ResourceServer(("https://idp.example.com",), ("mcp",), "https://idp.example.com")
    assert server.metadata_url(ENDPOINT) == "https://gw.example.com/.well-known/oauth-protected-resource/acme/seo/mcp"
    assert server.metadata_url("https://mcp.acme.com:8443/seo/mcp") == (
        "https://mcp.acme.com:8443/.well-known/oauth-protected-resource/seo/mcp"
    )
    assert server.metadata(ENDPOINT) == {
        "resource": ENDPOINT,
        "authorization_servers": ["https://idp.example.com"],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["mcp"],
    }


def test_only_the_providers_tokens_for_other_endpoints_are_bound_elsewhere() -> None:
    server = ResourceServer(("https://idp.example.com",), (), "https://idp.example.com")

    def token(**claims: object) -> str:
        return jwt.encode(claims, "k" * 32, algorithm="HS256")

    assert not server.bound_elsewhere(token(iss="https://idp.example.com", aud=ENDPOINT), ENDPOINT)
    assert not server.bound_elsewhere(token(iss="https://idp.example.com", aud=["x", ENDPOINT]), ENDPOINT)
    assert server.bound_elsewhere(token(iss="https://idp.example.com", aud=ENDPOINT + "/"), ENDPOINT)
    assert server.bound_elsewhere(token(iss="https://idp.example.com", aud="https://gw.example.com/"), ENDPOINT)
    assert not server.bound_elsewhere(token(iss="monomcp", aud="monomcp"), ENDPOINT)  # our own sign-in JWTs
    assert not server.bound_elsewhere("mmcp_abc", ENDPOINT)
