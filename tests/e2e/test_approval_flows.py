"""Protocol-native approval flows: 2026-07-28 input_required with URL elicitation, and
2025-11-25 tasks whose state is the approval."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import World, mcp_client

ARGS = {"amount": 7, "to": "carol"}


async def test_input_required_flow_runs_once_after_approval(world: World, front: str) -> None:
    seen: list[types.ElicitRequestParams] = []

    async def approve_in_browser(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        seen.append(params)
        approval_id = params.url.rsplit("/", 1)[1]  # type: ignore[union-attr]
        async with world.client("acme:admin") as admin:
            await admin.decide_approval(approval_id, approve=True)
        return types.ElicitResult(action="accept")

    async with mcp_client(
        f"{front}/acme/tools/mcp", world.keys["acme:member"], "2026-07-28", elicitation_callback=approve_in_browser
    ) as client:
        result = await client.call_tool("transfer", ARGS)
    assert not result.is_error and result.content[0].text == "sent 7 to carol"  # type: ignore[union-attr]
    assert len(seen) == 1 and seen[0].mode == "url" and "/console/approvals/" in seen[0].url  # type: ignore[union-attr]
    assert world.upstream.calls["transfer"] == 1


async def test_input_required_denied_reports_reason(world: World, front: str) -> None:
    async def deny_in_browser(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        async with world.client("acme:admin") as admin:
            await admin.decide_approval(params.url.rsplit("/", 1)[1], approve=False, reason="not today")  # type: ignore[union-attr]
        return types.ElicitResult(action="accept")

    async with mcp_client(
        f"{front}/acme/tools/mcp", world.keys["acme:member"], "2026-07-28", elicitation_callback=deny_in_browser
    ) as client:
        result = await client.call_tool("transfer", ARGS)
    assert result.is_error and "not today" in result.content[0].text  # type: ignore[union-attr]
    assert world.upstream.calls["transfer"] == 0


async def _rpc(front: str, key: str, method: str, params: dict[str, Any], version: str = "2025-11-25") -> Any:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{front}/acme/tools/mcp",
            headers={
                "Authorization": f"Bearer {key}",
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": version,
            },
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
        )
    return response.json()


async def test_forged_request_state_is_refused(world: World, front: str) -> None:
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"], "2026-07-28") as client:
        with pytest.raises(MCPError, match="requestState"):
            await client.session.call_tool("transfer", ARGS, request_state="eyJhIjoiYiJ9.AAAA")  # type: ignore[call-arg]
    assert world.upstream.calls["transfer"] == 0


async def test_task_flow_pending_then_approved_completes_with_result(world: World, front: str) -> None:
    key = world.keys["acme:member"]
    init = await _rpc(
        front,
        key,
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "vscode-like", "version": "1"}},
    )
    assert "call" in init["result"]["capabilities"]["tasks"]["requests"]["tools"]
    tools = (await _rpc(front, key, "tools/list", {}))["result"]["tools"]
    assert next(t for t in tools if t["name"] == "transfer")["execution"] == {"taskSupport": "optional"}

    created = await _rpc(front, key, "tools/call", {"name": "transfer", "arguments": ARGS, "task": {"ttl": 60000}})
    task = created["result"]["task"]
    assert task["status"] == "working" and "approve" in task["statusMessage"]
    polled = await _rpc(front, key, "tasks/get", {"taskId": task["taskId"]})
    assert polled["result"]["status"] == "working"

    waiting = asyncio.create_task(_rpc(front, key, "tasks/result", {"taskId": task["taskId"]}))
    await asyncio.sleep(0.5)
    assert not waiting.done()  # blocks while the admin has not decided
    async with world.client("acme:admin") as admin:
        pending = (await admin.list_approvals(status="pending")).approvals
        await admin.decide_approval(pending[0].id, approve=True)
    result = (await waiting)["result"]
    assert result["content"][0]["text"] == "sent 7 to carol" and not result.get("isError")
    assert world.upstream.calls["transfer"] == 1
    final = await _rpc(front, key, "tasks/get", {"taskId": task["taskId"]})
    assert final["result"]["status"] == "completed"
    # A different principal cannot read the task.
    other = await _rpc(front, world.keys["acme:admin"], "tasks/get", {"taskId": task["taskId"]})
    assert "error" in other


async def test_task_flow_denied_fails_with_reason(world: World, front: str) -> None:
    key = world.keys["acme:member"]
    created = await _rpc(front, key, "tools/call", {"name": "transfer", "arguments": ARGS, "task": {"ttl": 60000}})
    task_id = created["result"]["task"]["taskId"]
    async with world.client("acme:admin") as admin:
        pending = (await admin.list_approvals(status="pending")).approvals
        await admin.decide_approval(pending[0].id, approve=False, reason="budget frozen")
    polled = await _rpc(front, key, "tasks/get", {"taskId": task_id})
    assert polled["result"]["status"] == "failed" and "budget frozen" in polled["result"]["statusMessage"]
    result = (await _rpc(front, key, "tasks/result", {"taskId": task_id}))["result"]
    assert result["isError"] and "budget frozen" in result["content"][0]["text"]
    tampered = await _rpc(front, key, "tasks/get", {"taskId": task_id[:-2] + "xx"})
    assert "error" in tampered
    assert world.upstream.calls["transfer"] == 0
