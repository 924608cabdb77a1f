"""2025-11-25 approval tasks end to end, across two fronts and two policy services: a task
reaches a terminal status by itself once approved (the call runs once), any replica returns
the kept result as often as asked, ids are unique per request, tasks/list shows the caller's
own tasks, and tasks/cancel withdraws the approval so the call never runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_front.app import build_app
from policy_service.api.server import start
from policy_service.client import APPROVAL_STATUS_NAMES, PolicyClient
from policy_service.config import Settings
from tests.conftest import World, mcp_client
from tests.support import ts_client
from tests.support.servers import free_port, serve_asgi

ARGS = {"amount": 3, "to": "dave"}
SENT = "sent 3 to dave"


@dataclass
class Fronts:
    a: str
    b: str
    policy_b: str  # the second policy service, behind front b


@pytest.fixture
async def fronts(world: World, settings: Settings) -> AsyncIterator[Fronts]:
    second = await start(settings.model_copy(update={"cache_ttl_seconds": 0.5}), "127.0.0.1:0")
    try:
        port_a, port_b = free_port(), free_port()
        apps = [
            build_app(
                settings.model_copy(
                    update={"public_url": f"http://127.0.0.1:{port}", "service_token": world.service_token}
                ),
                addr,
            )
            for port, addr in ((port_a, world.policy_addr), (port_b, f"127.0.0.1:{second.port}"))
        ]
        async with serve_asgi(apps[0], port_a) as a, serve_asgi(apps[1], port_b) as b:
            yield Fronts(a, b, f"127.0.0.1:{second.port}")
    finally:
        await second.stop(0.5)


@dataclass
class TaskClient:
    """The Python SDK client for tasks/*; task-augmented tools/call goes as plain JSON-RPC,
    since the SDK (2.3) validates every tools/call answer as a CallToolResult."""

    sdk: Client
    url: str
    key: str

    @property
    def session(self) -> Any:
        return self.sdk.session

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        return await self.sdk.call_tool(name, arguments)


@asynccontextmanager
async def _client(front: str, key: str) -> AsyncIterator[TaskClient]:
    url = f"{front}/acme/tools/mcp"
    async with mcp_client(url, key) as sdk:
        yield TaskClient(sdk, url, key)


async def _create(client: TaskClient, arguments: dict[str, Any] = ARGS, ttl: int = 60_000) -> types.CreateTaskResult:
    params = {"name": "transfer", "arguments": arguments, "task": {"ttl": ttl}}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            client.url,
            headers={
                "Authorization": f"Bearer {client.key}",
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2025-11-25",
            },
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params},
        )
    return types.CreateTaskResult.model_validate(response.json()["result"])


async def _get(client: TaskClient, task_id: str) -> types.GetTaskResult:
    params = types.GetTaskRequestParams(task_id=task_id)
    return await client.session.send_request(types.GetTaskRequest(params=params), types.GetTaskResult)


async def _result(client: TaskClient, task_id: str) -> types.CallToolResult:
    params = types.GetTaskPayloadRequestParams(task_id=task_id)
    return await client.session.send_request(types.GetTaskPayloadRequest(params=params), types.CallToolResult)


async def _list(client: TaskClient, cursor: str | None = None) -> types.ListTasksResult:
    params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
    return await client.session.send_request(types.ListTasksRequest(params=params), types.ListTasksResult)


async def _cancel(client: TaskClient, task_id: str) -> types.CancelTaskResult:
    params = types.CancelTaskRequestParams(task_id=task_id)
    return await client.session.send_request(types.CancelTaskRequest(params=params), types.CancelTaskResult)


async def _until_terminal(client: TaskClient, task_id: str, polls: int = 100) -> types.GetTaskResult:
    """Polls tasks/get only, as a spec-following client does before it asks for the result."""
    for _ in range(polls):
        task = await _get(client, task_id)
        if task.status in ("completed", "failed", "cancelled"):
            return task
        await asyncio.sleep(0.1)
    raise AssertionError(f"task still {task.status} after {polls} polls: {task.status_message}")


async def _approve(world: World, approval_id: str, policy_addr: str | None = None) -> None:
    async with PolicyClient(policy_addr or world.policy_addr, world.keys["acme:admin"]) as admin:
        await admin.decide_approval(approval_id, approve=True)


def _approval_id(created: types.CreateTaskResult) -> str:
    assert created.meta is not None
    return str(created.meta["monomcp/approval"]["id"])


async def test_an_approved_task_completes_by_itself_and_every_replica_returns_its_result(
    world: World, fronts: Fronts
) -> None:
    key = world.keys["acme:member"]
    async with _client(fronts.a, key) as via_a, _client(fronts.b, key) as via_b:
        created = await _create(via_a)
        assert created.task.status == "working"
        assert (await _get(via_b, created.task.task_id)).status == "working"
        await _approve(world, _approval_id(created), fronts.policy_b)
        final = await _until_terminal(via_b, created.task.task_id)
        assert final.status == "completed", final.status_message
        results = [await _result(client, created.task.task_id) for client in (via_a, via_b, via_a)]
    assert [r.content[0].text for r in results] == [SENT] * 3  # type: ignore[union-attr]
    assert not any(r.is_error for r in results)
    assert world.upstream.calls["transfer"] == 1


async def test_identical_requests_get_their_own_tasks_and_the_call_runs_once(world: World, front: str) -> None:
    key = world.keys["acme:member"]
    async with _client(front, key) as client:
        first, second = await _create(client), await _create(client)
        assert first.task.task_id != second.task.task_id
        assert _approval_id(first) == _approval_id(second)  # one request for the admin, never a duplicate
        listed = {t.task_id for t in (await _list(client)).tasks}
        assert {first.task.task_id, second.task.task_id} <= listed
        await _approve(world, _approval_id(first))
        for created in (first, second):
            assert (await _until_terminal(client, created.task.task_id)).status == "completed"
            assert (await _result(client, created.task.task_id)).content[0].text == SENT  # type: ignore[union-attr]
    assert world.upstream.calls["transfer"] == 1


async def test_tasks_list_shows_only_the_callers_own_tasks(world: World, front: str) -> None:
    async with _client(front, world.keys["acme:member"]) as member, _client(front, world.keys["acme:admin"]) as admin:
        mine = await _create(member)
        theirs = await _create(admin, {"amount": 4, "to": "erin"})
        assert [t.task_id for t in (await _list(member)).tasks] == [mine.task.task_id]
        assert [t.task_id for t in (await _list(admin)).tasks] == [theirs.task.task_id]
        with pytest.raises(MCPError) as bad_cursor:
            await _list(member, cursor="not-a-cursor")
    assert bad_cursor.value.error.code == types.INVALID_PARAMS


async def test_cancel_withdraws_the_approval_and_the_call_never_runs(world: World, front: str) -> None:
    key = world.keys["acme:member"]
    async with _client(front, key) as client:
        created = await _create(client)
        cancelled = await _cancel(client, created.task.task_id)
        assert cancelled.status == "cancelled"
        assert (await _get(client, created.task.task_id)).status == "cancelled"
        approval = await world.operator.get_approval(_approval_id(created))
        assert APPROVAL_STATUS_NAMES[approval.status] == "denied" and approval.reason == "withdrawn by the requester"
        with pytest.raises(Exception, match="not pending"):
            await _approve(world, approval.id)  # too late for an admin: nothing to run
        after = await _result(client, created.task.task_id)
        assert after.is_error and after.meta is not None and after.meta["monomcp/executed"] is False
        with pytest.raises(MCPError) as again:
            await _cancel(client, created.task.task_id)
        assert again.value.error.code == types.INVALID_PARAMS
        # Asking again is a new request, not the withdrawn one's denial.
        retry = await client.call_tool("transfer", ARGS)
        assert retry.meta is not None and retry.meta["monomcp/approval"]["status"] == "pending"
    assert world.upstream.calls["transfer"] == 0


async def test_a_finished_task_cannot_be_cancelled(world: World, front: str) -> None:
    key = world.keys["acme:member"]
    async with _client(front, key) as client:
        created = await _create(client)
        await _approve(world, _approval_id(created))
        assert (await _until_terminal(client, created.task.task_id)).status == "completed"
        with pytest.raises(MCPError) as refused:
            await _cancel(client, created.task.task_id)
        assert refused.value.error.code == types.INVALID_PARAMS
        assert (await _get(client, created.task.task_id)).status == "completed"
    assert world.upstream.calls["transfer"] == 1


async def test_the_typescript_task_stream_ends_with_the_result(world: World, fronts: Fronts) -> None:
    """`callToolStream` polls tasks/get until a terminal status, then asks for the result."""
    key = world.keys["acme:member"]
    stream = await ts_client.start(
        f"{fronts.a}/acme/tools/mcp", key, "stream", {"name": "transfer", "arguments": ARGS, "timeoutMs": 30_000}
    )
    task_id = await stream.task_id()
    async with httpx.AsyncClient(timeout=10) as http:
        approval_id = await _pending_approval(world, http)
    await _approve(world, approval_id, fronts.policy_b)
    out = await stream.output()
    messages = out["messages"]
    assert messages[0]["type"] == "taskCreated" and messages[-1]["type"] == "result", out
    assert messages[-1]["result"]["content"][0]["text"] == SENT
    assert [m["status"] for m in messages if m["type"] == "taskStatus"][-1] == "completed"
    async with _client(fronts.b, key) as via_b:  # the other replica hands out the same result
        assert (await _result(via_b, task_id)).content[0].text == SENT  # type: ignore[union-attr]
    assert world.upstream.calls["transfer"] == 1


async def _pending_approval(world: World, http: httpx.AsyncClient) -> str:
    async with world.client("acme:admin") as admin:
        (pending,) = (await admin.list_approvals(status="pending")).approvals
    return pending.id


async def test_a_task_on_an_unreachable_backend_fails_without_naming_the_backend(world: World, front: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    await world.operator.upsert_toolkit(
        "acme", "tools", name="tools", visibility="private", backend_url=dead, backend_timeout_seconds=2.0
    )
    async with _client(front, world.keys["acme:member"]) as client:
        created = await _create(client)
        await _approve(world, _approval_id(created))
        final = await _until_terminal(client, created.task.task_id)
        result = await _result(client, created.task.task_id)
    assert final.status == "failed" and result.is_error
    shown = f"{final.model_dump_json()} {result.model_dump_json()}"
    assert dead.split("//")[1].split("/")[0] not in shown and "127.0.0.1" not in shown
    assert "backend" in result.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("asked", [10**20, -5, 0])
async def test_a_task_lives_at_most_a_week_and_at_least_while_its_approval_waits(
    world: World, front: str, asked: int
) -> None:
    week_ms = 7 * 24 * 3600 * 1000
    async with _client(front, world.keys["acme:member"]) as client:
        created = await _create(client, {"amount": 1, "to": f"ttl-{asked}"}, ttl=asked)
    assert created.task.ttl is not None and 3_600_000 < created.task.ttl <= week_ms


async def test_cancel_after_approval_but_before_the_run_still_stops_it(world: World, front: str) -> None:
    key = world.keys["acme:member"]
    async with _client(front, key) as client:
        created = await _create(client)
        await _approve(world, _approval_id(created))
        assert (await _cancel(client, created.task.task_id)).status == "cancelled"
        assert (await _until_terminal(client, created.task.task_id)).status == "cancelled"
        assert (await _result(client, created.task.task_id)).is_error
    assert world.upstream.calls["transfer"] == 0
