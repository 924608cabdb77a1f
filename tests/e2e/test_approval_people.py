"""Nobody approves their own request: checked per person, not per credential (ADR 0004)."""

from __future__ import annotations

from typing import Any

import pytest

from policy_service import errors
from policy_service.client import PolicyClient
from policy_service.identity import jwt_tokens
from tests.conftest import JWT_SECRET, World, mcp_client

ARGS = {"amount": 11, "to": "gina"}


async def _request(front: str, token: str) -> str:
    async with mcp_client(f"{front}/acme/tools/mcp", token) as client:
        result = await client.call_tool("transfer", ARGS)
    return str(result.meta["monomcp/approval"]["id"])


async def _decide(world: World, token: str, approval_id: str) -> Any:
    async with PolicyClient(world.policy_addr, token) as client:
        return await client.decide_approval(approval_id, approve=True)


async def _refused(world: World, token: str, approval_id: str) -> None:
    with pytest.raises(errors.PermissionDenied) as refused:
        await _decide(world, token, approval_id)
    assert refused.value.reason == "SELF_APPROVAL"


async def test_a_second_admin_key_cannot_approve_an_admin_keys_request(world: World, front: str) -> None:
    approval_id = await _request(front, world.keys["acme:admin"])
    await _refused(world, world.keys["acme:admin2"], approval_id)


async def test_a_person_cannot_approve_with_another_of_their_tokens(world: World, front: str) -> None:
    await world.operator.add_member("acme", "ann@acme.example", "admin")
    await world.operator.add_member("acme", "bob@acme.example", "admin")
    first = jwt_tokens.encode("ann@acme.example", "acme", JWT_SECRET)
    second = jwt_tokens.encode("ann@acme.example", "acme", JWT_SECRET, ttl_seconds=600)
    approval_id = await _request(front, first)
    await _refused(world, second, approval_id)
    await _refused(world, world.keys["acme:admin"], approval_id)  # an admin key may be ann's own
    bob = jwt_tokens.encode("bob@acme.example", "acme", JWT_SECRET)
    approved = await _decide(world, bob, approval_id)
    assert approved.decided_by == "bob@acme.example"


async def test_an_admin_decides_a_members_request(world: World, front: str) -> None:
    approval_id = await _request(front, world.keys["acme:member"])
    approved = await _decide(world, world.keys["acme:admin2"], approval_id)
    assert approved.status == 2  # APPROVED
