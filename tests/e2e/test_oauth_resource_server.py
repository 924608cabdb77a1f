"""The opt-in OAuth 2.1 resource-server mode, end to end with the MCP SDK's own OAuth
client against a local authorization server (the SDK's server routes, RS256 tokens):
protected-resource metadata per endpoint, the 401 challenge that names it, audience-bound
tokens (RFC 8707), and static keys still working."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import jwt
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from mcp_front.app import build_app
from policy_service.client import PolicyClient
from policy_service.config import Settings
from policy_service.domain_client import DomainClient
from policy_service.errors import Unauthenticated
from tests.conftest import World, mcp_client
from tests.support.dns_server import Zone, dns_server
from tests.support.idp import LocalIdp
from tests.support.oauth_server import BrowserStandIn, LocalAuthorizationServer, local_authorization_server
from tests.support.servers import free_port, serve_asgi

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
ACCEPT = {"Accept": "application/json, text/event-stream"}


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


@pytest.fixture
async def auth_server() -> AsyncIterator[LocalAuthorizationServer]:
    async with local_authorization_server(LocalIdp(), org="acme", groups=["everyone"]) as server:
        yield server


@pytest.fixture
async def zone() -> AsyncIterator[tuple[Zone, str]]:
    records = Zone()
    async with dns_server(records) as address:
        yield records, address


@pytest.fixture
def settings(settings: Settings, auth_server: LocalAuthorizationServer, zone: tuple[Zone, str]) -> Settings:
    # The policy service and the front share MONOMCP_PUBLIC_URL (endpoint audiences).
    return settings.model_copy(
        update={
            "public_url": f"http://127.0.0.1:{free_port()}",
            "oidc_issuer": auth_server.idp.issuer,
            "oidc_jwks_url": auth_server.idp.jwks_url,
            "oidc_role_claim": "groups",
            "oidc_role_map": "everyone=member",
            "oidc_jwks_min_refresh_seconds": 0.0,
            "oauth_resource_server": True,
            "dns_nameservers": zone[1],
        }
    )


@pytest.fixture
async def front(settings: Settings, policy_addr: str) -> AsyncIterator[str]:
    async with serve_asgi(build_app(settings, policy_addr), int(settings.public_url.rsplit(":", 1)[1])) as base:
        yield base


def _oauth(endpoint: str) -> tuple[OAuthClientProvider, MemoryStorage]:
    browser, storage = BrowserStandIn(), MemoryStorage()
    metadata = OAuthClientMetadata(
        client_name="monomcp test client",
        redirect_uris=[AnyUrl("http://127.0.0.1:9/callback")],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
    )
    provider = OAuthClientProvider(endpoint, metadata, storage, browser.redirect, browser.callback)
    return provider, storage


async def test_the_sdk_oauth_client_signs_in_and_calls_a_tool(
    world: World, front: str, auth_server: LocalAuthorizationServer
) -> None:
    endpoint = f"{front}/acme/tools/mcp"
    provider, storage = _oauth(endpoint)
    http = httpx2.AsyncClient(auth=provider, timeout=30)
    async with Client(streamable_http_client(endpoint, http_client=http)) as client:
        assert (await client.call_tool("echo", {"text": "hi"})).content[0].text == "hi"
    assert storage.tokens is not None and len(auth_server.issued) == 1
    claims = jwt.decode(storage.tokens.access_token, options={"verify_signature": False})
    assert claims["aud"] == endpoint  # RFC 8707: bound to exactly this endpoint


async def test_metadata_and_challenge_name_the_endpoint_exactly(
    world: World, front: str, auth_server: LocalAuthorizationServer
) -> None:
    endpoint = f"{front}/acme/tools/mcp"
    metadata_url = f"{front}/.well-known/oauth-protected-resource/acme/tools/mcp"
    async with httpx2.AsyncClient(timeout=30) as http:
        document = (await http.get(metadata_url)).json()
        assert document["resource"] == endpoint
        assert document["authorization_servers"] == [auth_server.idp.issuer]
        # Any endpoint path has its document (existence of a toolkit is not revealed).
        other = (await http.get(f"{front}/.well-known/oauth-protected-resource/globex/secret/mcp")).json()
        assert other["resource"] == f"{front}/globex/secret/mcp"
        assert (await http.get(f"{front}/.well-known/oauth-protected-resource")).status_code == 404
        refused = await http.post(endpoint, json=LIST, headers=ACCEPT)
        assert refused.status_code == 401
        assert f'resource_metadata="{metadata_url}"' in refused.headers["www-authenticate"]


async def test_tokens_bound_to_another_resource_are_refused(
    world: World, front: str, auth_server: LocalAuthorizationServer
) -> None:
    idp = auth_server.idp
    endpoint = f"{front}/acme/tools/mcp"
    async with httpx2.AsyncClient(timeout=30) as http:
        for audience in (f"{front}/acme/shared/mcp", "https://other-service.example/mcp"):
            token = idp.token(audience, org="acme", groups=["everyone"])
            refused = await http.post(endpoint, json=LIST, headers={**ACCEPT, "Authorization": f"Bearer {token}"})
            assert refused.status_code == 401 and "resource_metadata=" in refused.headers["www-authenticate"]
        bound = idp.token(endpoint, org="acme", groups=["everyone"])
        ok = await http.post(endpoint, json=LIST, headers={**ACCEPT, "Authorization": f"Bearer {bound}"})
        assert ok.status_code == 200
    # The policy service accepts an endpoint audience only for the token's own org.
    for audience, org in ((f"{front}/globex/tools/mcp", "acme"), ("https://other-service.example/mcp", "acme")):
        async with PolicyClient(world.policy_addr, idp.token(audience, org=org, groups=["everyone"])) as client:
            with pytest.raises(Unauthenticated) as refused_rpc:
                await client.whoami()
            assert refused_rpc.value.reason == "TOKEN_AUDIENCE"


async def test_static_keys_still_work(world: World, front: str) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        assert (await client.call_tool("echo", {"text": "key"})).content[0].text == "key"


async def test_on_a_custom_domain_the_resource_is_the_domains_url(
    world: World, front: str, auth_server: LocalAuthorizationServer, zone: tuple[Zone, str]
) -> None:
    domain = "mcp.acme.test"
    async with world.client("acme:admin") as admin:
        claimed = await DomainClient(admin).add_domain("", domain)
        zone[0].set(claimed.txt_record_name, "TXT", claimed.txt_record_value)
        await DomainClient(admin).verify_domain("", domain)
    endpoint = f"http://{domain}/tools/mcp"  # the scheme of MONOMCP_PUBLIC_URL, the Host as sent
    host = {"Host": domain}
    async with httpx2.AsyncClient(timeout=30) as http:
        document = (await http.get(f"{front}/.well-known/oauth-protected-resource/tools/mcp", headers=host)).json()
        assert document["resource"] == endpoint
        refused = await http.post(f"{front}/tools/mcp", json=LIST, headers={**ACCEPT, **host})
        expected = f'resource_metadata="http://{domain}/.well-known/oauth-protected-resource/tools/mcp"'
        assert expected in refused.headers["www-authenticate"]
        token = auth_server.idp.token(endpoint, org="acme", groups=["everyone"])
        bearer = {"Authorization": f"Bearer {token}"}
        ok = await http.post(f"{front}/tools/mcp", json=LIST, headers={**ACCEPT, **host, **bearer})
        assert ok.status_code == 200, ok.text
        # The same token on the gateway's own URL of that toolkit is bound elsewhere.
        elsewhere = await http.post(f"{front}/acme/tools/mcp", json=LIST, headers={**ACCEPT, **bearer})
        assert elsewhere.status_code == 401


async def test_a_session_id_survives_a_refreshed_access_token(
    world: World, front: str, auth_server: LocalAuthorizationServer
) -> None:
    """The `Mcp-Session-Id` names the user, not the bearer (docs/adr/0030): a client that
    refreshes its token keeps its session; another user's token is told the session is gone."""
    idp, endpoint = auth_server.idp, f"{front}/acme/tools/mcp"
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    first = idp.token(endpoint, org="acme", groups=["everyone"])
    refreshed = idp.token(endpoint, org="acme", groups=["everyone"], jti="refreshed")
    other_user = idp.token(endpoint, org="acme", groups=["everyone"], sub="user-2")
    async with httpx2.AsyncClient(timeout=30) as http:
        opened = await http.post(endpoint, json=init, headers={**ACCEPT, "Authorization": f"Bearer {first}"})
        session = {**ACCEPT, "Mcp-Session-Id": opened.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
        kept = await http.post(endpoint, json=LIST, headers={**session, "Authorization": f"Bearer {refreshed}"})
        gone = await http.post(endpoint, json=LIST, headers={**session, "Authorization": f"Bearer {other_user}"})
    assert first != refreshed and kept.status_code == 200 and "tools" in kept.json()["result"]
    assert gone.status_code == 404
