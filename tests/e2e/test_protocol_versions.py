"""The versions the gateway serves, named wherever a client learns them, and the wire rules
that follow: no tasks before 2025-11-25, no batches (their versions are not negotiated),
-32602 for a cursor we never issued, -32601 for a task on a tool without task support."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import World

SERVED = ["2025-06-18", "2025-11-25", "2026-07-28"]
ENVELOPE = "io.modelcontextprotocol/protocolVersion"
CAPS = "io.modelcontextprotocol/clientCapabilities"


async def _post(front: str, key: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(
            f"{front}/acme/tools/mcp",
            content=json.dumps(body),
            headers={
                "Authorization": f"Bearer {key}",
                "Accept": "application/json, text/event-stream",
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )


def _initialize(version: str) -> dict[str, Any]:
    client = {"name": "t", "version": "1"}
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": client}
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}


def _modern(method: str, version: str = "2026-07-28") -> tuple[dict[str, Any], dict[str, str]]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"_meta": {ENVELOPE: version, CAPS: {}}}}
    return body, {"MCP-Protocol-Version": version, "Mcp-Method": method}


async def test_discover_and_unsupported_version_name_every_served_version(world: World, front: str) -> None:
    key = world.keys["acme:member"]
    discovered = (await _post(front, key, *_modern("server/discover"))).json()
    assert discovered["result"]["supportedVersions"] == SERVED
    refused = await _post(front, key, *_modern("server/discover", "2099-01-01"))
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == -32022 and refused.json()["error"]["data"]["supported"] == SERVED


@pytest.mark.parametrize(
    "asked, agreed, tasks",
    [
        ("2025-03-26", "2025-06-18", False),
        ("2024-11-05", "2025-06-18", False),
        ("2025-06-18", "2025-06-18", False),
        ("2025-11-25", "2025-11-25", True),
    ],
)
async def test_tasks_are_offered_only_from_2025_11_25_and_batch_versions_are_not_negotiated(
    world: World, front: str, asked: str, agreed: str, tasks: bool
) -> None:
    result = (await _post(front, world.keys["acme:member"], _initialize(asked))).json()["result"]
    assert result["protocolVersion"] == agreed
    assert ("tasks" in result["capabilities"]) is tasks


async def test_a_batch_gets_a_clear_invalid_request(world: World, front: str) -> None:
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}]
    answer = await _post(front, world.keys["acme:member"], batch)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == -32600 and "batches are not accepted" in error["message"]


async def test_an_unknown_cursor_and_a_task_on_a_plain_tool_are_refused(world: World, front: str) -> None:
    key, version = world.keys["acme:member"], {"MCP-Protocol-Version": "2025-11-25"}
    listed = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"cursor": "not-ours"}}
    assert (await _post(front, key, listed, version)).json()["error"]["code"] == -32602
    call = {"name": "echo", "arguments": {"text": "x"}, "task": {}}
    answer = (
        await _post(front, key, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call}, version)
    ).json()
    assert answer["error"]["code"] == -32601 and world.upstream.calls["echo"] == 0
