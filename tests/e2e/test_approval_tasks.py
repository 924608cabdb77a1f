"""tasks/* for approval tasks: ids bound to org, toolkit and principal and carrying no
arguments; waits that end (deadline, non-allow decisions, client gone) and are capped."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mcp_front.app import build_app
from policy_service.config import Settings
from tests.conftest import World
from tests.support.servers import free_port, serve_asgi

SECRET = "sk-proj-" + "Q" * 32
ARGS = {"amount": 3, "to": SECRET}


async def _rpc(
    http: httpx.AsyncClient, front: str, key: str, method: str, params: dict[str, Any], toolkit: str = "tools"
) -> Any:
    response = await http.post(
        f"{front}/acme/{toolkit}/mcp",
        headers={
            "Authorization": f"Bearer {key}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-11-25",
        },
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
    )
    return response.json()


async def _task(http: httpx.AsyncClient, front: str, key: str, args: dict[str, Any] = ARGS) -> str:
    created = await _rpc(http, front, key, "tools/call", {"name": "transfer", "arguments": args, "task": {}})
    return str(created["result"]["task"]["taskId"])


async def _approve_only_pending(world: World) -> str:
    async with world.client("acme:admin") as admin:
        (pending,) = (await admin.list_approvals(status="pending")).approvals
        await admin.decide_approval(pending.id, approve=True)
    return pending.id


def _decoded_parts(token: str) -> list[bytes]:
    parts = []
    for part in token.split("."):
        try:
            parts.append(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        except (binascii.Error, ValueError):
            continue
    return parts


async def test_task_id_carries_no_arguments(world: World, front: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        task_id = await _task(http, front, world.keys["acme:member"])
    assert SECRET not in task_id and "dave" not in task_id
    assert all(SECRET.encode() not in part and b"amount" not in part for part in _decoded_parts(task_id))


async def test_task_result_on_another_toolkit_is_unknown_and_writes_no_calls(world: World, front: str) -> None:
    """The reported busy loop: the tool is blocked where the task id is replayed."""
    await world.operator.set_role_override("member", "acme", "shared", "transfer", "blocked", org="acme")
    key = world.keys["acme:member"]
    async with httpx.AsyncClient(timeout=20) as http:
        task_id = await _task(http, front, key)
        await _approve_only_pending(world)
        elsewhere = await _rpc(http, front, key, "tasks/result", {"taskId": task_id}, toolkit="shared")
        forged = await _rpc(http, front, key, "tasks/result", {"taskId": "nope.1.AAAA"}, toolkit="shared")
        got = await _rpc(http, front, key, "tasks/get", {"taskId": task_id}, toolkit="shared")
    assert elsewhere["error"] == forged["error"] == got["error"]
    assert elsewhere["error"]["message"] == "Unknown task"
    calls = (await world.operator.query_audit("acme", toolkit="shared", tool="transfer")).records
    assert calls == [] and world.upstream.calls["transfer"] == 0


async def test_task_result_stops_on_a_non_allow_decision(world: World, front: str) -> None:
    key = world.keys["acme:member"]
    async with httpx.AsyncClient(timeout=20) as http:
        task_id = await _task(http, front, key)
        await _approve_only_pending(world)
        # Between the approval and the result, the member loses the tool.
        await world.operator.set_role_override("member", "acme", "tools", "transfer", "blocked", org="acme")
        answer = await _rpc(http, front, key, "tasks/result", {"taskId": task_id})
    assert answer["result"]["isError"] and "blocked" in answer["result"]["content"][0]["text"]
    blocked = (await world.operator.query_audit("acme", toolkit="tools", tool="transfer", status="blocked")).records
    assert len(blocked) == 1 and world.upstream.calls["transfer"] == 0


@pytest.fixture
async def capped_front(settings: Settings, policy_addr: str) -> AsyncIterator[str]:
    """A front where one credential may hold one approval wait at a time."""
    port = free_port()
    capped = settings.model_copy(
        update={
            "public_url": f"http://127.0.0.1:{port}",
            "approval_waiters_per_credential": 1,
            "task_result_wait_seconds": 60.0,
        }
    )
    async with serve_asgi(build_app(capped, policy_addr), port) as base:
        yield base


async def test_waits_per_credential_are_capped(world: World, capped_front: str) -> None:
    key = world.keys["acme:member"]
    async with httpx.AsyncClient(timeout=20) as http:
        first = await _task(http, capped_front, key)
        second = await _task(http, capped_front, key, {"amount": 4, "to": "erin"})
        holder = asyncio.create_task(_rpc(http, capped_front, key, "tasks/result", {"taskId": first}))
        await asyncio.sleep(0.5)
        refused = await _rpc(http, capped_front, key, "tasks/result", {"taskId": second})
        assert "Too many requests are already waiting" in refused["error"]["message"]
        async with world.client("acme:admin") as admin:
            pending = (await admin.list_approvals(status="pending")).approvals
            for approval in pending:
                await admin.decide_approval(approval.id, approve=False, reason="done testing")
        assert (await holder)["result"]["isError"]


async def test_client_disconnect_stops_the_wait_and_nothing_runs_later(world: World, capped_front: str) -> None:
    key = world.keys["acme:member"]
    async with httpx.AsyncClient(timeout=20) as http:
        task_id = await _task(http, capped_front, key)
        probe_task = await _task(http, capped_front, key, {"amount": 5, "to": "frank"})
    async with httpx.AsyncClient(timeout=20) as leaving:
        waiting = asyncio.create_task(_rpc(leaving, capped_front, key, "tasks/result", {"taskId": task_id}))
        await asyncio.sleep(0.5)
        waiting.cancel()
    # The server notices the client left and releases its wait (the cap of one frees up).
    for _ in range(60):
        async with httpx.AsyncClient(timeout=1.0) as probe:
            try:
                answer = await _rpc(probe, capped_front, key, "tasks/result", {"taskId": probe_task})
            except httpx.ReadTimeout:
                break  # accepted: the earlier wait was released
        assert "Too many" in answer["error"]["message"]
        await asyncio.sleep(0.5)
    else:
        pytest.fail("the disconnected client's wait was never released")
    async with world.client("acme:admin") as admin:
        pending = {a.arguments_sha256: a for a in (await admin.list_approvals(status="pending")).approvals}
        target = next(a for a in pending.values() if SECRET in a.arguments_json)
        await admin.decide_approval(target.id, approve=True)
        await asyncio.sleep(2.5)  # an abandoned server-side loop would have run it by now
        assert (await admin.get_approval(target.id)).status == 2  # still APPROVED: unused
    assert world.upstream.calls["transfer"] == 0
