"""Initialize era, two fronts: a backend's request relayed during a call waits on the
replica that holds the call's stream. The client's answer reaches the backend through that
replica. Without a shared Redis, an answer that lands on another replica is accepted (202)
and dropped, and the call ends at the toolkit's timeout, audited; with Redis
(MONOMCP_REDIS_URL) it is routed to the replica holding the call, behind a round-robin
balancer without affinity (docs/adr/0025-standalone-streams-and-subscriptions.md)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import mcp_types as types
import pytest

from mcp_front.app import build_app
from policy_service.config import Settings
from tests.conftest import World, mcp_client
from tests.support.relay_backend import TOOLKIT, relay_toolkit
from tests.support.round_robin import RoundRobin
from tests.support.servers import free_port, serve_asgi

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", 6379)) == 0


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


@pytest.fixture
async def balanced(world: World, settings: Settings) -> AsyncIterator[tuple[str, RoundRobin]]:
    """Two fronts sharing Redis (MONOMCP_REDIS_URL), behind a round-robin balancer without affinity."""
    ports = free_port(), free_port()
    shared = {"service_token": world.service_token, "redis_url": REDIS_URL}
    apps = [
        build_app(settings.model_copy(update={"public_url": f"http://127.0.0.1:{p}", **shared}), world.policy_addr)
        for p in ports
    ]
    async with serve_asgi(apps[0], ports[0]) as a, serve_asgi(apps[1], ports[1]) as b:
        balancer = RoundRobin([a, b])
        async with serve_asgi(balancer) as front:
            yield front, balancer


@pytest.mark.skipif(not _redis_up(), reason="Redis is not reachable on 127.0.0.1:6379")
async def test_with_redis_an_answer_that_lands_on_another_replica_reaches_the_call(
    world: World, balanced: tuple[str, RoundRobin]
) -> None:
    front, balancer = balanced

    async def sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="routed"), model="m"
        )

    async with relay_toolkit(world.operator, timeout_seconds=20.0):
        async with mcp_client(f"{front}/acme/{TOOLKIT}/mcp", world.keys["acme:member"], sampling_callback=sample) as c:
            result = await c.call_tool("test_sampling", {"prompt": "who?"})
    assert not result.is_error and "routed" in result.content[0].text  # type: ignore[union-attr]
    call = next(i for i, m in balancer.taken if m.get("method") == "tools/call")
    answer = next(i for i, m in balancer.taken if "method" not in m and str(m.get("id")).startswith("monomcp-"))
    assert call != answer  # the answer really landed on the other replica
