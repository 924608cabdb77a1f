"""Racing re-calls of one approval: exactly one execution, and no stray pending approval
(DESIGN: consuming an approval is its own path and never creates one)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import World, mcp_client

ARGS = {"amount": 9, "to": "dave"}
RACERS = 12


async def _pending_approval(world: World, front: str) -> str:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        first = await client.call_tool("transfer", ARGS)
    return str(first.meta["monomcp/approval"]["id"])


async def _pending_ids(world: World) -> list[str]:
    async with world.client("acme:admin") as admin:
        return [a.id for a in (await admin.list_approvals(status="pending")).approvals]


async def test_concurrent_plain_recalls_run_once_and_queue_nothing(world: World, front: str) -> None:
    approval_id = await _pending_approval(world, front)
    async with world.client("acme:admin") as admin:
        await admin.decide_approval(approval_id, approve=True)
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        results = await asyncio.gather(*(client.call_tool("transfer", ARGS) for _ in range(RACERS)))
    assert world.upstream.calls["transfer"] == 1
    ran = [r for r in results if not r.is_error]
    lost = [r for r in results if r.is_error]
    assert len(ran) == 1 and len(lost) == RACERS - 1
    for result in lost:
        assert "already used by call" in result.content[0].text  # type: ignore[union-attr]
        assert result.meta["monomcp/approval"]["id"] == approval_id
    assert await _pending_ids(world) == []


async def _rpc(http: httpx.AsyncClient, front: str, key: str, method: str, params: dict[str, Any]) -> Any:
    response = await http.post(
        f"{front}/acme/tools/mcp",
        headers={
            "Authorization": f"Bearer {key}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-11-25",
        },
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
    )
    return response.json()


async def test_concurrent_task_results_run_once_and_queue_nothing(world: World, front: str) -> None:
    key = world.keys["acme:member"]
    async with httpx.AsyncClient(timeout=30) as http:
        created = await _rpc(http, front, key, "tools/call", {"name": "transfer", "arguments": ARGS, "task": {}})
        task_id = created["result"]["task"]["taskId"]
        async with world.client("acme:admin") as admin:
            (pending,) = (await admin.list_approvals(status="pending")).approvals
            await admin.decide_approval(pending.id, approve=True)
        answers = await asyncio.gather(
            *(_rpc(http, front, key, "tasks/result", {"taskId": task_id}) for _ in range(RACERS // 2))
        )
    assert world.upstream.calls["transfer"] == 1
    # The call ran once, and every racer gets its one kept result.
    assert all(a["result"]["content"][0]["text"] == "sent 9 to dave" for a in answers)
    assert await _pending_ids(world) == []
