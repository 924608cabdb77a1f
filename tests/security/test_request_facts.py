"""Attack matrix: request facts a gRPC caller states for the audit log (request id, user
agent, client address, channel). Like the sign-in address (test_sign_in_facts.py), they are
believed only from a service identity with the `record` scope, i.e. the front vouching for
its HTTP client; any other caller's admin rows keep its gRPC peer, no request id or user
agent, and the channel `grpc` (or `cli`, which claims nothing more than plain gRPC).

Regression: admin-action rows kept whatever `x-request-id`, `user-agent` and
`x-monomcp-source` any caller sent, and sign-in rows the `user_agent` any caller stated."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import httpx
import pytest

from policy_service import errors
from policy_service._generated.monomcp.policy.v1 import admin_pb2, admin_pb2_grpc
from policy_service.client import PolicyClient
from tests.support.attack_stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

FORGED_AGENT = "forged-agent/1.0"
FORGED_ADDRESS = "203.0.113.9"


async def _create_key(stack: Stack, metadata: list[tuple[str, str]]) -> dict[str, Any]:
    """CreateApiKey over a bare channel with exactly this metadata; its audit row."""
    name = f"facts-{uuid.uuid4().hex[:10]}"
    async with grpc.aio.insecure_channel(stack.policy_addr) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        request = admin_pb2.CreateApiKeyRequest(org_slug="acme", name=name, role="member")
        await stub.CreateApiKey(request, metadata=[("authorization", f"Bearer {stack.keys['acme:admin']}"), *metadata])
    rows = [r for r in await stack.rows_where("method = :v", "admin/CreateApiKey") if name in r["request_payload"]]
    assert len(rows) == 1
    return rows[0]


def _stated(request_id: str, source: str = "console") -> list[tuple[str, str]]:
    return [
        ("x-request-id", request_id),
        ("user-agent", FORGED_AGENT),
        ("x-monomcp-user-agent", FORGED_AGENT),
        ("x-monomcp-client-address", FORGED_ADDRESS),
        ("x-monomcp-source", source),
    ]


@pytest.mark.parametrize("vouch", ["none", "org-key", "read-only-service"])
async def test_facts_stated_without_a_recording_service_identity_are_not_believed(stack: Stack, vouch: str) -> None:
    request_id = f"forged-{uuid.uuid4().hex[:12]}"
    vouching = {
        "none": [],
        "org-key": [("x-monomcp-service", stack.keys["acme:admin"])],
        "read-only-service": [
            (
                "x-monomcp-service",
                (await stack.operator.create_service_identity(f"ro-{uuid.uuid4().hex[:8]}", ["read"])).secret,
            )
        ],
    }[vouch]
    row = await _create_key(stack, [*_stated(request_id), *vouching])
    assert row["request_id"] != request_id
    assert FORGED_AGENT not in (row["user_agent"] or "")
    assert row["client_address"] != FORGED_ADDRESS
    assert row["source"] == "grpc"


async def test_the_front_service_identity_vouches_for_the_facts_it_states(stack: Stack) -> None:
    request_id = f"vouched-{uuid.uuid4().hex[:12]}"
    row = await _create_key(stack, [*_stated(request_id), ("x-monomcp-service", stack.service_token)])
    assert (row["request_id"], row["user_agent"], row["client_address"], row["source"]) == (
        request_id,
        FORGED_AGENT,
        FORGED_ADDRESS,
        "console",
    )


async def test_the_cli_label_needs_no_vouching(stack: Stack) -> None:
    """`cli` says no more than `grpc` (a direct gRPC caller), so it is kept as stated."""
    row = await _create_key(stack, _stated("x", source="cli"))
    assert row["source"] == "cli"


async def test_a_stated_sign_in_user_agent_without_a_service_identity_is_not_believed(stack: Stack) -> None:
    async with PolicyClient(stack.policy_addr, source="console") as anonymous:
        with pytest.raises(errors.Unauthenticated):
            await anonymous.login("alice@acme.test", "not the password", "acme", user_agent=FORGED_AGENT + " login")
    assert await stack.rows_where("user_agent = :v", FORGED_AGENT + " login") == []
    rows = [r for r in await stack.rows_where("method = :v", "auth/login") if r["source"] == "console"]
    assert rows == []


async def test_an_admin_action_through_the_front_keeps_the_http_facts(stack: Stack) -> None:
    request_id = f"rest-{uuid.uuid4().hex[:12]}"
    async with httpx.AsyncClient() as http:
        made = await http.post(
            f"{stack.front}/api/v1/api-keys",
            json={"name": request_id, "role": "member"},
            headers={
                "Authorization": f"Bearer {stack.keys['acme:admin']}",
                "User-Agent": "rest-client/2.0",
                "X-Request-Id": request_id,
            },
        )
    assert made.status_code == 201, made.text
    rows = [
        r for r in await stack.rows_where("method = :v", "admin/CreateApiKey") if request_id in r["request_payload"]
    ]
    assert [(r["source"], r["request_id"], r["user_agent"], r["client_address"]) for r in rows] == [
        ("api", request_id, "rest-client/2.0", "127.0.0.1")
    ]
