"""Cancellation through the gateway: `notifications/cancelled` or a client that goes away
stops the backend's work (it is sent `notifications/cancelled`) and the audit says so."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.conftest import World
from tests.support.relay_backend import TOOLKIT, RelayBackend, relay_toolkit

HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
SLOW_CALL = {
    "jsonrpc": "2.0",
    "id": 41,
    "method": "tools/call",
    "params": {"name": "test_slow", "arguments": {"seconds": 20}, "_meta": {"progressToken": "p"}},
}


async def _next_message(lines: AsyncIterator[str]) -> dict[str, Any]:
    async for line in lines:
        if line.startswith("data:") and line[5:].strip():
            message: dict[str, Any] = json.loads(line[5:])
            return message
    raise AssertionError("the stream ended")


async def _eventually(check: Any) -> None:
    """Bounded wait for something another process does after the call returns."""
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


async def _audited_cancelled(world: World) -> bool:
    records = (await world.operator.query_audit("acme", tool="test_slow")).records
    return "cancelled" in [r.status for r in records]


async def _backend_cancelled(backend: RelayBackend) -> bool:
    return backend.observed.cancelled == 1


async def test_cancel_notification_stops_the_backend_and_is_audited(world: World, front: str) -> None:
    url = f"{front}/acme/{TOOLKIT}/mcp"
    headers = {**HEADERS, "Authorization": f"Bearer {world.keys['acme:member']}"}
    async with relay_toolkit(world.operator) as backend, httpx.AsyncClient(timeout=30) as http:
        async with http.stream("POST", url, headers=headers, json=SLOW_CALL) as response:
            lines = response.aiter_lines()
            assert (await _next_message(lines))["method"] == "notifications/progress"  # the backend is running
            cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 41}}
            assert (await http.post(url, headers=headers, json=cancel)).status_code == 202
            final = await _next_message(lines)
            while "method" in final:
                final = await _next_message(lines)
        await _eventually(lambda: _backend_cancelled(backend))
        assert backend.observed.finished == 0
    assert final["id"] == 41 and final["result"]["isError"] and "cancelled" in final["result"]["content"][0]["text"]
    assert await _audited_cancelled(world)


async def test_another_credential_cannot_cancel_the_call(world: World, front: str) -> None:
    url = f"{front}/acme/{TOOLKIT}/mcp"
    headers = {**HEADERS, "Authorization": f"Bearer {world.keys['acme:member']}"}
    call = {**SLOW_CALL, "params": {**SLOW_CALL["params"], "arguments": {"seconds": 0.5}}}  # type: ignore[dict-item]
    async with relay_toolkit(world.operator) as backend, httpx.AsyncClient(timeout=30) as http:
        async with http.stream("POST", url, headers=headers, json=call) as response:
            lines = response.aiter_lines()
            await _next_message(lines)
            cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 41}}
            other = {**headers, "Authorization": f"Bearer {world.keys['acme:admin']}"}
            await http.post(url, headers=other, json=cancel)
            final = await _next_message(lines)
            while "method" in final:
                final = await _next_message(lines)
    assert final["result"]["content"][0]["text"] == "finished"
    assert backend.observed.cancelled == 0 and backend.observed.finished == 1


async def test_client_disconnect_cancels_the_backend_call(world: World, front: str) -> None:
    url = f"{front}/acme/{TOOLKIT}/mcp"
    headers = {**HEADERS, "Authorization": f"Bearer {world.keys['acme:member']}"}
    async with relay_toolkit(world.operator) as backend:
        async with (
            httpx.AsyncClient(timeout=30) as http,
            http.stream("POST", url, headers=headers, json=SLOW_CALL) as r,
        ):
            assert (await _next_message(r.aiter_lines()))["method"] == "notifications/progress"
        # the client is gone (connection closed mid-stream)
        await _eventually(lambda: _backend_cancelled(backend))
        await _eventually(lambda: _audited_cancelled(world))
        assert backend.observed.finished == 0


async def test_2026_client_disconnect_cancels_the_backend_call(world: World, front: str) -> None:
    url = f"{front}/acme/{TOOLKIT}/mcp"
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "test_slow",
        "Authorization": f"Bearer {world.keys['acme:member']}",
    }
    meta = {
        "progressToken": "p",
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    call = {**SLOW_CALL, "params": {**SLOW_CALL["params"], "_meta": meta}}  # type: ignore[dict-item]
    async with relay_toolkit(world.operator) as backend:
        async with httpx.AsyncClient(timeout=30) as http, http.stream("POST", url, headers=headers, json=call) as r:
            assert r.status_code == 200, await r.aread()
            assert (await _next_message(r.aiter_lines()))["method"] == "notifications/progress"
        await _eventually(lambda: _backend_cancelled(backend))
        await _eventually(lambda: _audited_cancelled(world))
