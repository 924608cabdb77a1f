"""Attack matrix: password sign-in over gRPC without a service identity. The client address
a caller states is what the per-address failure limit counts and what the audit row keeps,
so it may come only from a service identity (the front); anyone else is its gRPC peer.

Regression: Login, Refresh and CreatePasswordConsoleSession believed any caller's stated
address (a fresh one per attempt dodged the limit, a victim's locked it, audit rows lied)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from policy_service import errors
from policy_service.client import PolicyClient
from tests.support.attack_stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

STATED = "203.0.113.77"  # an address the caller does not have (TEST-NET-3)


async def test_a_stated_client_address_without_a_service_identity_is_not_believed(stack: Stack) -> None:
    async with PolicyClient(stack.policy_addr) as anonymous:
        with pytest.raises(errors.Unauthenticated):
            await anonymous.login("alice@acme.test", "not the password", "acme", client_address=STATED)
    assert await stack.rows_where("client_address = :v", STATED) == []


async def test_the_front_service_identity_states_the_client_address(stack: Stack) -> None:
    vouched = "198.51.100.23"  # TEST-NET-2
    async with stack.service() as front:
        with pytest.raises(errors.Unauthenticated):
            await front.login("alice@acme.test", "not the password", "acme", client_address=vouched)
    assert [row["client_address"] for row in await stack.rows_where("client_address = :v", vouched)] == [vouched]


async def test_a_sign_in_through_the_front_keeps_the_http_client_address(stack: Stack) -> None:
    """The front sends its service token on sign-in RPCs, so its HTTP client's address is kept
    (a gRPC peer would read `ipv4:127.0.0.1:<port>`)."""
    email = f"nobody-{uuid.uuid4().hex[:8]}@acme.test"
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{stack.front}/api/v1/auth/login", json={"email": email, "password": "wrong", "org": "acme"}
        )
    assert answer.status_code == 401
    rows = [row for row in await stack.rows_where("method = :v", "auth/login") if email in str(row)]
    assert [row["client_address"] for row in rows] == ["127.0.0.1"]
