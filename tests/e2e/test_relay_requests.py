"""Sampling and elicitation a backend asks for during a call: relayed to the client, the
client's answer returned to the backend; only the caller's own credential can answer."""

from __future__ import annotations

import json
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import World, mcp_client
from tests.support.era_backends import OldBackend
from tests.support.relay_backend import TOOLKIT, relay_toolkit

HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}


async def test_sampling_is_answered_by_the_client(world: World, front: str) -> None:
    asked: list[types.CreateMessageRequestParams] = []

    async def sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append(params)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="forty-two"), model="test-model"
        )

    async with relay_toolkit(world.operator):
        url = f"{front}/acme/{TOOLKIT}/mcp"
        async with mcp_client(url, world.keys["acme:member"], sampling_callback=sample) as client:
            result = await client.call_tool("test_sampling", {"prompt": "meaning of life?"})
    assert not result.is_error
    assert result.content[0].text == "LLM response: forty-two"  # type: ignore[union-attr]
    assert asked[0].messages[0].content.text == "meaning of life?"  # type: ignore[union-attr]
    records = (await world.operator.query_audit("acme", tool="test_sampling")).records
    assert "ok" in [r.status for r in records]


async def test_elicitation_is_answered_by_the_client(world: World, front: str) -> None:
    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert params.mode == "form" and "username" in params.requested_schema["properties"]
        return types.ElicitResult(action="accept", content={"username": "carol", "email": "c@example.com"})

    async with relay_toolkit(world.operator):
        url = f"{front}/acme/{TOOLKIT}/mcp"
        async with mcp_client(url, world.keys["acme:member"], elicitation_callback=elicit) as client:
            result = await client.call_tool("test_elicitation", {"message": "who are you?"})
    assert not result.is_error
    assert "action=accept" in result.content[0].text and "carol" in result.content[0].text  # type: ignore[union-attr]


async def test_a_2026_client_is_not_sent_server_requests(world: World, front: str) -> None:
    """2026-07-28 has no server-to-client requests on a response stream: a handshake-only
    backend that asks anyway is told no by the front."""
    async with relay_toolkit(world.operator, wrap=OldBackend):
        url = f"{front}/acme/{TOOLKIT}/mcp"
        async with mcp_client(url, world.keys["acme:member"], "2026-07-28") as client:
            # The backend's tool fails on the refusal; its JSON-RPC error reaches the client as is.
            with pytest.raises(MCPError, match="sampling/createMessage is not available"):
                await client.call_tool("test_sampling", {"prompt": "hello"})


async def test_a_dual_era_backend_cannot_ask_a_2026_client(world: World, front: str) -> None:
    """A backend serving both eras is spoken to in the 2026-07-28 client's era, where it has no
    channel to ask on: its own refusal reaches the client (what the backend speaks, the client gets)."""
    async with relay_toolkit(world.operator):
        url = f"{front}/acme/{TOOLKIT}/mcp"
        async with mcp_client(url, world.keys["acme:member"], "2026-07-28") as client:
            with pytest.raises(MCPError, match="no back-channel for server-initiated requests"):
                await client.call_tool("test_sampling", {"prompt": "hello"})


def _events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line[5:].strip()) for line in lines if line.startswith("data:") and line[5:].strip()]


async def test_only_the_caller_can_answer_a_relayed_request(world: World, front: str) -> None:
    url = f"{front}/acme/{TOOLKIT}/mcp"
    member, admin = world.keys["acme:member"], world.keys["acme:admin"]
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "test_elicitation", "arguments": {}}}
    call["params"]["arguments"] = {"message": "name?"}  # type: ignore[index]
    async with relay_toolkit(world.operator), httpx.AsyncClient(timeout=30) as http:
        async with http.stream("POST", url, headers={**HEADERS, "Authorization": f"Bearer {member}"}, json=call) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.aiter_lines()
            seen: list[str] = []
            async for line in lines:
                seen.append(line)
                if _events(seen):
                    break
            request = _events(seen)[0]
            assert request["method"] == "elicitation/create"

            def answer(name: str) -> dict[str, Any]:
                content = {"username": name, "email": f"{name}@example.com"}
                return {"jsonrpc": "2.0", "id": request["id"], "result": {"action": "accept", "content": content}}

            forged = await http.post(
                url, headers={**HEADERS, "Authorization": f"Bearer {admin}"}, json=answer("mallory")
            )
            assert forged.status_code == 202  # accepted like any stray response, and dropped
            genuine = await http.post(
                url, headers={**HEADERS, "Authorization": f"Bearer {member}"}, json=answer("alice")
            )
            assert genuine.status_code == 202
            async for line in lines:
                seen.append(line)
    final = _events(seen)[-1]
    assert final["id"] == 1
    text = final["result"]["content"][0]["text"]
    assert "alice" in text and "mallory" not in text
