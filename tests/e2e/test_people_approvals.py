"""Keys carry the person they belong to, so nobody approves their own request with any
mix of their keys and tokens, and a key owned by another person can decide (ADR 0004)."""

from __future__ import annotations

import pytest

from policy_service import errors
from policy_service.client import PolicyClient
from tests.conftest import World, mcp_client

ARGS = {"amount": 12, "to": "gina"}
PASSWORD = "a long enough password"


async def _request(front: str, token: str) -> str:
    async with mcp_client(f"{front}/acme/tools/mcp", token) as client:
        result = await client.call_tool("transfer", ARGS)
    return str(result.meta["monomcp/approval"]["id"])  # type: ignore[index]


async def _sign_in(world: World, email: str) -> str:
    async with PolicyClient(world.policy_addr) as anonymous:
        return (await anonymous.login(email, PASSWORD, "acme")).access_token


async def _own_member_key(world: World, email: str) -> str:
    """The person, signed in, makes themselves a member-role key."""
    async with PolicyClient(world.policy_addr, await _sign_in(world, email)) as person:
        issued = await person.create_api_key("", "my member key", "member")
    assert issued.key.owner_email == email
    return issued.secret


async def test_an_admin_cannot_approve_a_request_made_with_their_own_member_key(world: World, front: str) -> None:
    async with world.client("acme:admin") as admin:
        await admin.create_person("", "ann@acme.example", "Ann", "admin", PASSWORD)
    member_key = await _own_member_key(world, "ann@acme.example")
    approval_id = await _request(front, member_key)
    async with PolicyClient(world.policy_addr, await _sign_in(world, "ann@acme.example")) as ann:
        with pytest.raises(errors.PermissionDenied) as refused:
            await ann.decide_approval(approval_id, approve=True)
    assert refused.value.reason == "SELF_APPROVAL"


async def test_a_key_owned_by_another_person_decides_an_admins_request(world: World, front: str) -> None:
    async with world.client("acme:admin") as admin:
        await admin.create_person("", "ann@acme.example", "Ann", "admin", PASSWORD)
        await admin.create_person("", "bob@acme.example", "Bob", "admin", PASSWORD)
        bobs_key = (await admin.create_api_key("", "bob's admin key", "admin", owner="bob@acme.example")).secret
    approval_id = await _request(front, await _sign_in(world, "ann@acme.example"))
    async with PolicyClient(world.policy_addr, bobs_key) as bob:
        approved = await bob.decide_approval(approval_id, approve=True)
    assert approved.status == 2  # APPROVED
