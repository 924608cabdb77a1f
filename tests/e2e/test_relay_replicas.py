"""Initialize era, two fronts: a backend's request relayed during a call waits on the
replica that holds the call's stream. The client's answer reaches the backend through that
replica; an answer that lands on another replica is accepted (202) and dropped, and the
call ends at the toolkit's timeout, audited (docs/adr/0011-relaying-streams.md says what a
multi-replica deployment needs: affinity by Authorization for relayed answers)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mcp_front.app import build_app
from policy_service.config import Settings
from tests.conftest import World
from tests.support.relay_backend import TOOLKIT, relay_toolkit
from tests.support.servers import free_port, serve_asgi

HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "test_elicitation", "arguments": {"message": "name?"}},
}


@pytest.fixture
async def two_fronts(world: World, settings: Settings) -> AsyncIterator[tuple[str, str]]:
    ports = free_port(), free_port()
    apps = [
        build_app(
            settings.model_copy(update={"public_url": f"http://127.0.0.1:{p}", "service_token": world.service_token}),
            world.policy_addr,
        )
        for p in ports
    ]
    async with serve_asgi(apps[0], ports[0]) as a, serve_asgi(apps[1], ports[1]) as b:
        yield a, b


def _events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line[5:].strip()) for line in lines if line.startswith("data:") and line[5:].strip()]


async def _call_answering_on(holder: str, answer_to: str, key: str) -> dict[str, Any]:
    """Calls on `holder`, answers the relayed elicitation by POSTing to `answer_to`; the final event."""
    auth = {**HEADERS, "Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=30) as http:
        async with http.stream("POST", f"{holder}/acme/{TOOLKIT}/mcp", headers=auth, json=CALL) as response:
            seen: list[str] = []
            lines = response.aiter_lines()
            async for line in lines:
                seen.append(line)
                if _events(seen):
                    break
            request = _events(seen)[0]
            assert request["method"] == "elicitation/create"
            content = {"username": "alice", "email": "alice@example.com"}
            answer = {"jsonrpc": "2.0", "id": request["id"], "result": {"action": "accept", "content": content}}
            posted = await http.post(f"{answer_to}/acme/{TOOLKIT}/mcp", headers=auth, json=answer)
            assert posted.status_code == 202
            async for line in lines:
                seen.append(line)
    return _events(seen)[-1]


async def test_an_answer_reaches_the_backend_through_the_replica_holding_the_call(
    world: World, two_fronts: tuple[str, str]
) -> None:
    a, _ = two_fronts
    async with relay_toolkit(world.operator):
        final = await _call_answering_on(a, a, world.keys["acme:member"])
    assert final["id"] == 1 and "alice" in final["result"]["content"][0]["text"]


async def test_an_answer_posted_to_another_replica_is_dropped_and_the_call_times_out_audited(
    world: World, two_fronts: tuple[str, str]
) -> None:
    a, b = two_fronts
    async with relay_toolkit(world.operator, timeout_seconds=2.0):
        final = await _call_answering_on(a, b, world.keys["acme:member"])
    assert final["id"] == 1 and final["result"]["isError"] and "alice" not in json.dumps(final)
    assert "timed out" in final["result"]["content"][0]["text"]
    records = (await world.operator.query_audit("acme", tool="test_elicitation")).records
    assert "timeout" in [r.status for r in records]
