"""Access tokens from an external identity provider (a local one, JWKS over real HTTP)
work wherever a key works — gRPC admin, REST, MCP endpoints — as the org and role their
claims name; anything else is refused with a clear reason."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from policy_service.client import PolicyClient
from policy_service.config import Settings
from policy_service.errors import PermissionDenied, Unauthenticated
from tests.conftest import World, mcp_client
from tests.support.idp import LocalIdp, local_idp

AUD = "monomcp-gateway"


@pytest.fixture
async def idp() -> AsyncIterator[LocalIdp]:
    async with local_idp() as provider:
        yield provider


@pytest.fixture
def settings(settings: Settings, idp: LocalIdp) -> Settings:
    return settings.model_copy(
        update={
            "oidc_issuer": idp.issuer,
            "oidc_jwks_url": idp.jwks_url,
            "oidc_audience": AUD,
            "oidc_role_claim": "groups",
            "oidc_role_map": "mcp-admins=admin,everyone=member",
            "oidc_jwks_min_refresh_seconds": 0.0,
        }
    )


async def test_provider_tokens_work_on_grpc_rest_and_mcp(world: World, idp: LocalIdp, front: str) -> None:
    admin_token = idp.token(AUD, org="acme", groups=["everyone", "mcp-admins"], email="ada@acme.example")
    async with PolicyClient(world.policy_addr, admin_token) as client:
        me = await client.whoami()
        assert (me.kind, me.org_slug, me.role, me.display) == ("external", "acme", "admin", "ada@acme.example")
        assert [k.name for k in await client.list_api_keys()]  # an admin RPC
        with pytest.raises(PermissionDenied):  # console SSO needs a MonoMCP person with that email
            await client.create_console_session()
    async with httpx2.AsyncClient(timeout=30) as http:
        whoami = await http.get(f"{front}/api/v1/whoami", headers={"Authorization": f"Bearer {admin_token}"})
        assert whoami.status_code == 200 and whoami.json()["role"] == "admin"
    member_token = idp.token(AUD, idp.keys[1], sub="user-2", org="acme", groups=["everyone"])  # ES256
    async with mcp_client(f"{front}/acme/tools/mcp", member_token) as mcp:
        assert (await mcp.call_tool("echo", {"text": "hi"})).content[0].text == "hi"
    outsider = idp.token(AUD, org="globex", groups=["everyone"])
    async with httpx2.AsyncClient(timeout=30) as http:
        private = await http.post(
            f"{front}/acme/tools/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Authorization": f"Bearer {outsider}", "Accept": "application/json, text/event-stream"},
        )
        assert private.status_code == 404


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "another-service", "org": "acme", "groups": ["everyone"]}, "TOKEN_AUDIENCE"),
        ({"aud": AUD, "org": "acme", "groups": ["strangers"]}, "TOKEN_ROLE"),
        ({"aud": AUD, "org": "no-such-org", "groups": ["everyone"]}, "TOKEN_ROLE"),
        ({"aud": AUD, "org": "acme", "groups": ["everyone"], "ttl": -60}, "TOKEN_EXPIRED"),
        ({"aud": AUD, "org": "acme", "groups": ["everyone"], "iss": "https://evil.example"}, "TOKEN_ISSUER"),
    ],
)
async def test_tokens_the_gateway_does_not_accept(
    world: World, idp: LocalIdp, claims: dict[str, object], reason: str
) -> None:
    claims = dict(claims)  # the parameter is shared by the sqlite and postgres runs
    audience = str(claims.pop("aud"))
    ttl = int(claims.pop("ttl", 300))  # type: ignore[call-overload]
    async with PolicyClient(world.policy_addr, idp.token(audience, ttl=ttl, **claims)) as client:
        with pytest.raises(Unauthenticated) as refused:
            await client.whoami()
    assert refused.value.reason == reason


async def test_a_rotated_key_is_picked_up_without_a_restart(world: World, idp: LocalIdp) -> None:
    async with PolicyClient(world.policy_addr, idp.token(AUD, org="acme", groups=["everyone"])) as client:
        assert (await client.whoami()).role == "member"
    new = idp.rotate()
    async with PolicyClient(world.policy_addr, idp.token(AUD, new, org="acme", groups=["everyone"])) as client:
        assert (await client.whoami()).role == "member"
