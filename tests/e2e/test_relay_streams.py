"""What flows during a tools/call, through the real gateway to a real SDK backend that
streams: progress and logs in order before the result, JSON kept JSON, both eras."""

from __future__ import annotations

import json
from typing import Any

import httpx
import mcp_types as types
import pytest

from tests.conftest import World, mcp_client
from tests.support.relay_backend import TOOLKIT, relay_toolkit

HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}


def _sse_messages(text: str) -> list[dict[str, Any]]:
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if "data:" in b]
    return [json.loads("".join(line[5:].strip() for line in b.split("\n") if line.startswith("data:"))) for b in blocks]


async def _post(front: str, key: str, toolkit: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(
            f"{front}/acme/{toolkit}/mcp", headers={**HEADERS, "Authorization": f"Bearer {key}"}, json=body
        )


async def test_progress_streams_as_sse_in_order_then_the_result(world: World, front: str) -> None:
    async with relay_toolkit(world.operator):
        call = {"name": "test_tool_with_progress", "arguments": {}, "_meta": {"progressToken": "tok-1"}}
        response = await _post(
            front,
            world.keys["acme:member"],
            TOOLKIT,
            {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": call},
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = _sse_messages(response.text)
    progress = [m["params"] for m in messages if m.get("method") == "notifications/progress"]
    assert [(p["progressToken"], p["progress"]) for p in progress] == [("tok-1", 0), ("tok-1", 50), ("tok-1", 100)]
    assert messages[-1]["id"] == 7 and not messages[-1]["result"].get("isError")
    assert "executed successfully" in messages[-1]["result"]["content"][0]["text"]


async def test_a_backend_that_answers_json_is_answered_with_json(world: World, front: str) -> None:
    request = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hi"}},
    }
    response = await _post(front, world.keys["acme:member"], "tools", request)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["result"]["content"][0]["text"] == "hi"


async def test_logs_and_progress_reach_an_initialize_era_client(world: World, front: str) -> None:
    logs: list[Any] = []
    seen: list[float] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with relay_toolkit(world.operator):
        url = f"{front}/acme/{TOOLKIT}/mcp"
        async with mcp_client(url, world.keys["acme:member"], logging_callback=on_log) as client:
            logged = await client.call_tool("test_tool_with_logging", {})
            counted = await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
    assert logs == ["Tool execution started", "Tool processing data", "Tool execution completed"]
    assert seen == [0, 50, 100]
    assert not logged.is_error and not counted.is_error
    records = (await world.operator.query_audit("acme", tool="test_tool_with_logging")).records
    assert "ok" in [r.status for r in records]


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_set_level_filters_logs_and_reaches_the_backend(world: World, front: str) -> None:
    logs: list[Any] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async with relay_toolkit(world.operator) as backend:
        url = f"{front}/acme/{TOOLKIT}/mcp"
        async with mcp_client(url, world.keys["acme:member"], logging_callback=on_log) as client:
            await client.set_logging_level("warning")
            result = await client.call_tool("test_tool_with_logging", {})
    assert not result.is_error
    assert logs == []  # the tool logs at info: below the level the client asked for
    assert backend.observed.levels == ["warning"]


async def test_2026_client_gets_logs_only_at_its_per_request_level(world: World, front: str) -> None:
    received: dict[str, list[Any]] = {"info": [], "none": []}

    def collector(into: list[Any]) -> Any:
        async def on_log(params: types.LoggingMessageNotificationParams) -> None:
            into.append(params.data)

        return on_log

    async with relay_toolkit(world.operator):
        url = f"{front}/acme/{TOOLKIT}/mcp"
        key = world.keys["acme:member"]
        async with mcp_client(
            url, key, "2026-07-28", logging_callback=collector(received["info"]), log_level="info"
        ) as client:
            assert not (await client.call_tool("test_tool_with_logging", {})).is_error
        async with mcp_client(url, key, "2026-07-28", logging_callback=collector(received["none"])) as client:
            assert not (await client.call_tool("test_tool_with_logging", {})).is_error
    assert received["info"] == ["Tool execution started", "Tool processing data", "Tool execution completed"]
    assert received["none"] == []


async def test_2026_client_gets_progress(world: World, front: str) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with relay_toolkit(world.operator):
        url = f"{front}/acme/{TOOLKIT}/mcp"
        async with mcp_client(url, world.keys["acme:member"], "2026-07-28") as client:
            result = await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
    assert not result.is_error and seen == [0, 50, 100]
