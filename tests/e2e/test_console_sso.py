"""Console single sign-on: authorization code + PKCE against a local identity provider
(the SDK's authorization-server routes), played through by a browser stand-in; the person
with the token's verified email is signed in to the console, anyone else is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import AnyUrl

from mcp_front.app import build_app
from policy_service.config import Settings
from tests.conftest import World
from tests.support.idp import LocalIdp
from tests.support.oauth_server import LocalAuthorizationServer, local_authorization_server
from tests.support.servers import free_port, serve_asgi

CLIENT_ID = "monomcp-console"
PASSWORD = "correct horse battery staple"


@pytest.fixture
async def auth_server() -> AsyncIterator[LocalAuthorizationServer]:
    claims = {"org": "acme", "groups": ["staff"], "email": "Ada@Acme.example", "email_verified": True}
    async with local_authorization_server(LocalIdp(), **claims) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, auth_server: LocalAuthorizationServer) -> Settings:
    public_url = f"http://127.0.0.1:{free_port()}"
    auth_server.clients[CLIENT_ID] = OAuthClientInformationFull(
        client_id=CLIENT_ID,
        redirect_uris=[AnyUrl(f"{public_url}/console/sso/callback")],
        token_endpoint_auth_method="none",
        grant_types=["authorization_code"],
        response_types=["code"],
        scope="openid email profile",
    )
    return settings.model_copy(
        update={
            "public_url": public_url,
            "oidc_issuer": auth_server.idp.issuer,
            "oidc_jwks_url": auth_server.idp.jwks_url,
            "oidc_audience": f"{public_url}/console",
            "oidc_role_claim": "groups",
            "oidc_default_role": "member",
            "console_oidc_client_id": CLIENT_ID,
        }
    )


@pytest.fixture
async def front(settings: Settings, policy_addr: str) -> AsyncIterator[str]:
    async with serve_asgi(build_app(settings, policy_addr), int(settings.public_url.rsplit(":", 1)[1])) as base:
        yield base


async def _through_the_provider(http: httpx2.AsyncClient, front: str, tamper_state: bool = False) -> httpx2.Response:
    start = await http.get(f"{front}/console/sso", params={"next": "/console/audit"})
    assert start.status_code == 303
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [CLIENT_ID]
    back = await http.get(authorize)
    assert back.status_code == 302, back.text
    callback = back.headers["location"]
    if tamper_state:
        callback = callback.replace("state=", "state=x")
    return await http.get(callback)


async def test_the_person_with_the_verified_email_is_signed_in(world: World, front: str) -> None:
    async with world.client("acme:admin") as admin:
        await admin.create_person("", "ada@acme.example", "Ada", "admin", PASSWORD)
    async with httpx2.AsyncClient(timeout=30, follow_redirects=False) as http:
        assert "Sign in with SSO" in (await http.get(f"{front}/console/login")).text
        signed_in = await _through_the_provider(http, front)
        assert signed_in.status_code == 200 and signed_in.headers["refresh"] == "0; url=/console/audit"
        page = await http.get(f"{front}/console/approvals")
        assert page.status_code == 200 and "Sign out" in page.text
        whoami = await http.get(f"{front}/api/v1/whoami")
        assert (whoami.json()["kind"], whoami.json()["display"]) == ("user", "ada@acme.example")


async def test_strangers_members_and_forged_state_are_refused(
    world: World, front: str, auth_server: LocalAuthorizationServer
) -> None:
    async with httpx2.AsyncClient(timeout=30, follow_redirects=False) as http:
        stranger = await _through_the_provider(http, front)  # nobody has that email in acme
        assert stranger.status_code == 303 and "no+MonoMCP+account" in stranger.headers["location"]
        async with world.client("acme:admin") as admin:
            await admin.create_person("", "ada@acme.example", "Ada", "member", PASSWORD)
        member = await _through_the_provider(http, front)
        assert member.status_code == 303 and "/console/login?error=" in member.headers["location"]
        forged = await _through_the_provider(http, front, tamper_state=True)
        assert forged.status_code == 303 and "interrupted" in forged.headers["location"]
        assert (await http.get(f"{front}/console/approvals")).status_code == 303  # still signed out
        auth_server.user_claims["email_verified"] = False
        unverified = await _through_the_provider(http, front)
        assert unverified.status_code == 303 and "verified+email" in unverified.headers["location"]
