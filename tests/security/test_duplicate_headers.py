"""Attack matrix: a header the gateway decides on, sent twice. Two parsers of one request
(the router reads the first Host, a proxy or the SDK perhaps the last) must never disagree
on who is calling, which org a custom domain names or which protocol applies, so the front
refuses such a request with 400 before any routing, credential check or execution, on every
path (RFC 9112 §3.2 asks exactly this for Host).

Regression: duplicate Host, Authorization and Mcp-Protocol-Version headers were accepted
(the first one silently won)."""

from __future__ import annotations

import json

import pytest

from tests.support.attack_stack import Stack, new_request_id, tools_call
from tests.support.raw_http import raw_post

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _cases(stack: Stack) -> dict[str, list[tuple[str, str]]]:
    """Extra header lines per case (raw_post already sends Host and the MCP headers)."""
    key = stack.keys["acme:member"]
    return {
        "host-different": [("Host", "mcp.acme.test")],
        "host-identical": [("Host", stack.front.removeprefix("http://"))],
        "host-mixed-case": [("HOST", "mcp.acme.test")],
        "authorization": [("Authorization", f"Bearer {stack.keys['globex:member']}")],
        "authorization-identical": [("Authorization", f"Bearer {key}")],
        "protocol-version": [("MCP-Protocol-Version", "2025-06-18")],
        "session-id": [("Mcp-Session-Id", "a"), ("Mcp-Session-Id", "b")],
        "origin": [("Origin", "http://127.0.0.1"), ("Origin", "https://evil.example.com")],
        "content-type": [("Content-Type", "text/plain")],
        "request-id": [("X-Request-Id", "second")],
        "forwarded-proto": [("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http")],
        "mcp-method": [("Mcp-Method", "tools/call"), ("Mcp-Method", "tools/list")],
    }


CASES = [
    "host-different",
    "host-identical",
    "host-mixed-case",
    "authorization",
    "authorization-identical",
    "protocol-version",
    "session-id",
    "origin",
    "content-type",
    "request-id",
    "forwarded-proto",
    "mcp-method",
]


@pytest.mark.parametrize("case", CASES)
async def test_a_repeated_security_header_is_refused_before_anything_runs(stack: Stack, case: str) -> None:
    request_id = new_request_id(f"dup-{case}")
    key = stack.keys["acme:member"]
    headers = [
        ("Accept", "application/json, text/event-stream"),
        ("Content-Type", "application/json"),
        ("MCP-Protocol-Version", "2025-11-25"),
        ("Authorization", f"Bearer {key}"),
        ("X-Request-Id", request_id),
        *_cases(stack)[case],
    ]
    before = stack.executions()
    body = json.dumps(tools_call("echo", {"text": "hi"})).encode()
    response = await raw_post(f"{stack.front}/acme/tools/mcp", headers, body)
    assert response.status_code == 400, response.text
    assert "more than once" in response.text
    assert stack.executions() == before
    assert await stack.audit_rows(request_id) == []


async def test_admin_paths_refuse_a_repeated_authorization_too(stack: Stack) -> None:
    headers = [
        ("Authorization", f"Bearer {stack.keys['acme:member']}"),
        ("Authorization", f"Bearer {stack.keys['acme:admin']}"),
        ("Content-Type", "application/json"),
    ]
    response = await raw_post(f"{stack.front}/api/v1/api-keys", headers, b'{"name": "dup", "role": "admin"}')
    assert response.status_code == 400, response.text


async def test_one_of_each_still_works(stack: Stack) -> None:
    """The control: the same request with each header once runs the tool."""
    request_id = new_request_id("dup-control")
    before = stack.executions()
    response = await stack.post(
        "/acme/tools/mcp", stack.keys["acme:member"], tools_call("echo", {"text": "hi"}), request_id=request_id
    )
    assert response.status_code == 200, response.text
    assert stack.executions() == before + 1


async def test_content_length_with_transfer_encoding_is_refused(stack: Stack) -> None:
    """The smuggling sibling: two framings for one body (raw_post sends Content-Length)."""
    before = stack.executions()
    body = json.dumps(tools_call("echo", {"text": "hi"})).encode()
    headers = [
        ("Accept", "application/json, text/event-stream"),
        ("Content-Type", "application/json"),
        ("Authorization", f"Bearer {stack.keys['acme:member']}"),
        ("Transfer-Encoding", "chunked"),
    ]
    response = await raw_post(f"{stack.front}/acme/tools/mcp", headers, body)
    assert response.status_code == 400
    assert stack.executions() == before
