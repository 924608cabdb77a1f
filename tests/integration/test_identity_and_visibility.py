"""Every identity and visibility rule through the real gRPC server and typed client."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
from sqlalchemy import event

from policy_service import errors
from policy_service.api.server import PolicyServer
from policy_service.client import PERMISSION_NAMES, PolicyClient
from policy_service.identity.jwt_tokens import encode
from tests.conftest import JWT_SECRET, World


async def _tools(world: World, token: str, org: str = "acme", toolkit: str = "tools") -> dict[str, str]:
    async with world.service() as client:
        response = await client.list_tools(token, org, toolkit)
    return {t.name: PERMISSION_NAMES[t.permission] for t in response.tools}


async def test_list_tools_resolves_owner_defaults_and_hides_blocked(world: World) -> None:
    tools = await _tools(world, world.keys["acme:member"])
    assert tools["echo"] == "always_allow" and tools["transfer"] == "needs_approval"
    assert "wipe" not in tools


async def test_cross_org_private_toolkit_is_not_found_like_unknown(world: World) -> None:
    async with world.service() as client:
        with pytest.raises(errors.NotFound) as private:
            await client.list_tools(world.keys["globex:member"], "acme", "tools")
        with pytest.raises(errors.NotFound) as unknown:
            await client.list_tools(world.keys["globex:member"], "acme", "nope")
    assert private.value.message == unknown.value.message and private.value.reason == unknown.value.reason


async def test_public_toolkit_visible_to_any_org(world: World) -> None:
    assert "echo" in await _tools(world, world.keys["globex:member"], toolkit="shared")


@pytest.mark.parametrize(
    ("token", "reason"),
    [("", "MISSING_CREDENTIAL"), ("mmcp_short", "KEY_MALFORMED"), ("garbage", "UNKNOWN_CREDENTIAL")],
)
async def test_bad_credentials_are_unauthenticated_with_reason(world: World, token: str, reason: str) -> None:
    with pytest.raises(errors.Unauthenticated) as exc:
        await _tools(world, token)
    assert exc.value.reason == reason


async def test_well_formed_but_unknown_key(world: World) -> None:
    from policy_service.identity.api_keys import generate

    with pytest.raises(errors.Unauthenticated) as exc:
        await _tools(world, generate().token)
    assert exc.value.reason == "KEY_INVALID"


async def test_revoked_key_refused(world: World) -> None:
    issued = await world.operator.create_api_key("acme", "temp", "member")
    await _tools(world, issued.secret)
    await world.operator.revoke_api_key("acme", issued.key.id)
    with pytest.raises(errors.Unauthenticated) as exc:
        await _tools(world, issued.secret)
    assert exc.value.reason == "KEY_REVOKED"


async def test_expired_key_refused(world: World) -> None:
    issued = await world.operator.create_api_key("acme", "one-second", "member", ttl_seconds=1)
    await _tools(world, issued.secret)
    await asyncio.sleep(1.2)
    with pytest.raises(errors.Unauthenticated) as exc:
        await _tools(world, issued.secret)
    assert exc.value.reason == "KEY_EXPIRED"


async def test_jwt_user_gets_role_from_membership(world: World) -> None:
    await world.operator.add_member("acme", "dev@acme.example", "member")
    token = encode("dev@acme.example", "acme", JWT_SECRET)
    assert "echo" in await _tools(world, token)
    async with PolicyClient(world.policy_addr, token) as client:
        me = await client.whoami()
    assert (me.kind, me.org_slug, me.role) == ("user", "acme", "member")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: encode("dev@acme.example", "acme", "wrong-secret-" + "y" * 32), "TOKEN_INVALID"),
        (lambda: encode("dev@acme.example", "acme", JWT_SECRET, ttl_seconds=-10), "TOKEN_EXPIRED"),
        (
            lambda: jwt.encode({"sub": "dev@acme.example", "org": "acme"}, JWT_SECRET, algorithm="HS256"),
            "TOKEN_INVALID",
        ),
        (
            lambda: jwt.encode(
                {"sub": "dev@acme.example", "org": "acme", "exp": int(time.time()) + 60}, JWT_SECRET, algorithm="HS512"
            ),
            "TOKEN_ALGORITHM",
        ),
        (lambda: encode("stranger@evil.example", "acme", JWT_SECRET), "NOT_A_MEMBER"),
        (lambda: encode("dev@acme.example", "globex", JWT_SECRET), "NOT_A_MEMBER"),
    ],
    ids=["forged-signature", "expired", "no-exp", "wrong-alg", "not-a-member", "other-org"],
)
async def test_bad_jwts_are_refused(world: World, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    await world.operator.add_member("acme", "dev@acme.example", "member")
    with pytest.raises(errors.Unauthenticated) as exc:
        await _tools(world, make())
    assert exc.value.reason == reason


async def test_none_algorithm_jwt_refused(world: World) -> None:
    header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"
    import base64
    import json

    body = base64.urlsafe_b64encode(
        json.dumps({"sub": "dev@acme.example", "org": "acme", "exp": int(time.time()) + 60}).encode()
    ).rstrip(b"=")
    with pytest.raises(errors.Unauthenticated):
        await _tools(world, f"{header}.{body.decode()}.")


async def test_an_invisible_private_toolkit_costs_what_an_unknown_one_does(world: World, policy: PolicyServer) -> None:
    """A private toolkit's 404 must not be told apart from an unknown one's by its cost: the
    visibility decision comes before any of its tools or rules are read."""
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(policy.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with world.service() as client:
            for toolkit in ("tools", "no-such-toolkit"):
                with pytest.raises(errors.NotFound):
                    await client.list_tools(world.keys["globex:member"], "acme", toolkit)
    finally:
        event.remove(policy.engine.sync_engine, "before_cursor_execute", record)
    catalogue_reads = [s for s in statements if "FROM tools" in s or "org_tool_defaults" in s]
    assert catalogue_reads == []
