"""Attack matrix: password sign-in over gRPC without a service identity. The client address
a caller states is what the per-address failure limit counts and what the audit row keeps,
so it may come only from a service identity (the front); anyone else is its gRPC peer.

Open bug (the fix spans policy_service/api/people_rpcs.py and the front's client, which is
being rewritten this session; see the red-team report)."""

from __future__ import annotations

import pytest

from policy_service import errors
from policy_service.client import PolicyClient
from tests.support.attack_stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

STATED = "203.0.113.77"  # an address the caller does not have (TEST-NET-3)


@pytest.mark.xfail(
    strict=True,
    reason="Login/Refresh/CreatePasswordConsoleSession take client_address from any caller: "
    "a direct gRPC caller picks a fresh address per attempt (no per-address limit) or a "
    "victim's (locks its sign-ins), and the audit row keeps the forged address",
)
async def test_a_stated_client_address_without_a_service_identity_is_not_believed(stack: Stack) -> None:
    async with PolicyClient(stack.policy_addr) as anonymous:
        with pytest.raises(errors.Unauthenticated):
            await anonymous.login("alice@acme.test", "not the password", "acme", client_address=STATED)
    assert await stack.rows_where("client_address = :v", STATED) == []
