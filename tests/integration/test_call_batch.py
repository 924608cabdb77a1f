"""CallBatch: the authorize and complete items of concurrent callers share one RPC, and each
item keeps the answer and the error its unary RPC gives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import code_pb2
from sqlalchemy import func, select

from policy_service import errors
from policy_service._generated.monomcp.policy.v1 import policy_pb2, policy_pb2_grpc
from policy_service.api.server import PolicyServer
from policy_service.batching import BatcherClosed, CallBatcher
from policy_service.client import DECISION_ALLOW, DECISION_BLOCKED
from policy_service.storage.database import session_factory
from policy_service.storage.models import AuditRequestLog
from tests.conftest import World


def _authorize(key: str, tool: str = "echo") -> policy_pb2.CallBatchItem:
    request = policy_pb2.AuthorizeToolCallRequest(
        credential=key, org_slug="acme", toolkit_slug="tools", tool=tool, arguments_json='{"text": "hi"}'
    )
    return policy_pb2.CallBatchItem(authorize=request)


def _complete(call_id: str) -> policy_pb2.CallBatchItem:
    return policy_pb2.CallBatchItem(complete=policy_pb2.CompleteToolCallRequest(call_id=call_id, status="ok"))


async def _batch(world: World, *items: policy_pb2.CallBatchItem) -> list[policy_pb2.CallBatchResult]:
    async with grpc.aio.insecure_channel(world.policy_addr) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        metadata = (("authorization", f"Bearer {world.service_token}"),)
        results = [
            result
            async for response in stub.CallBatch(policy_pb2.CallBatchRequest(items=items), metadata=metadata)
            for result in response.results
        ]
    return sorted(results, key=lambda r: r.index)


async def _drain(call: AsyncIterator[policy_pb2.CallBatchResponse]) -> None:
    async for _ in call:
        pass


async def test_each_item_gets_its_own_answer_in_order(world: World) -> None:
    member = world.keys["acme:member"]
    first, blocked, stranger = await _batch(
        world, _authorize(member), _authorize(member, "wipe"), _authorize("mmcp_not_a_real_key")
    )
    assert first.authorize.decision == DECISION_ALLOW and first.authorize.backend.url == world.upstream_url
    assert blocked.authorize.decision == DECISION_BLOCKED
    assert stranger.error.code == code_pb2.UNAUTHENTICATED
    done, again, unknown = await _batch(
        world, _complete(first.authorize.call_id), _complete(first.authorize.call_id), _complete("0" * 32)
    )
    assert done.WhichOneof("result") == "complete"
    assert again.error.code == code_pb2.FAILED_PRECONDITION and again.error.reason == "CALL_ALREADY_COMPLETED"
    assert unknown.error.code == code_pb2.NOT_FOUND and unknown.error.reason == "CALL_NOT_FOUND"


async def test_concurrent_client_calls_keep_their_unary_errors(world: World, policy: PolicyServer) -> None:
    member = world.keys["acme:member"]
    async with world.service() as client:
        decisions = await asyncio.gather(
            *(client.authorize_tool_call(member, "acme", "tools", "echo", "{}") for _ in range(40))
        )
        await asyncio.gather(*(client.complete_tool_call(d.call_id, "ok", '{"content": []}') for d in decisions))
        outcomes = await asyncio.gather(
            client.complete_tool_call(decisions[0].call_id, "ok"),
            client.authorize_tool_call("mmcp_not_a_real_key", "acme", "tools", "echo", "{}"),
            client.authorize_tool_call(member, "acme", "no-such-toolkit", "echo", "{}"),
            client.complete_tool_call(decisions[1].call_id, "no-such-status"),
            return_exceptions=True,
        )
    assert [type(o) for o in outcomes] == [
        errors.FailedPrecondition,
        errors.Unauthenticated,
        errors.NotFound,
        errors.InvalidArgument,
    ]
    async with session_factory(policy.engine)() as session:
        completions = await session.execute(
            select(func.count()).where(AuditRequestLog.completes.in_([d.call_id for d in decisions]))
        )
    assert completions.scalar_one() == 40


async def test_a_batch_needs_the_execute_scope(world: World) -> None:
    reader = await world.operator.create_service_identity("reader", ["read"])
    async with grpc.aio.insecure_channel(world.policy_addr) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        request = policy_pb2.CallBatchRequest(items=[_authorize(world.keys["acme:member"])])
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await _drain(stub.CallBatch(request, metadata=(("authorization", f"Bearer {reader.secret}"),)))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await _drain(stub.CallBatch(request))
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_lone_call_gets_the_answers_and_errors_of_a_batched_one(world: World, policy: PolicyServer) -> None:
    """At low concurrency an item leaves alone, as its unary RPC: same decision, same row, same error."""
    member = world.keys["acme:member"]
    async with world.service() as client:
        decision = await client.authorize_tool_call(member, "acme", "tools", "echo", "{}")
        assert decision.decision == DECISION_ALLOW and decision.backend.url == world.upstream_url
        blocked = await client.authorize_tool_call(member, "acme", "tools", "wipe", "{}")
        assert blocked.decision == DECISION_BLOCKED
        await client.complete_tool_call(decision.call_id, "ok", '{"content": []}')
        with pytest.raises(errors.FailedPrecondition) as again:
            await client.complete_tool_call(decision.call_id, "ok")
        assert again.value.reason == "CALL_ALREADY_COMPLETED"
        with pytest.raises(errors.Unauthenticated):
            await client.authorize_tool_call("mmcp_not_a_real_key", "acme", "tools", "echo", "{}")
        with pytest.raises(errors.NotFound):
            await client.complete_tool_call("0" * 32, "ok")
    async with session_factory(policy.engine)() as session:
        completions = await session.execute(select(func.count()).where(AuditRequestLog.completes == decision.call_id))
    assert completions.scalar_one() == 1


async def test_closing_the_client_answers_every_waiting_call(world: World) -> None:
    """Regression: close() dropped queued items without resolving them, so their callers hung."""
    member = world.keys["acme:member"]
    client = world.service()
    waiting = [asyncio.create_task(client.authorize_tool_call(member, "acme", "tools", "echo", "{}")) for _ in range(3)]
    await asyncio.sleep(0)  # queued in the batcher, not yet sent
    await client.close()
    outcomes = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 30)
    assert all(isinstance(o, BatcherClosed) for o in outcomes), outcomes
    assert all("closed" in str(o) for o in outcomes)


async def test_closing_the_batcher_answers_items_in_flight() -> None:
    """A batch whose RPC is still out (a stalled policy service) fails its items with the clear error."""
    sent = asyncio.Event()

    async def stalled(request: policy_pb2.CallBatchRequest) -> AsyncIterator[policy_pb2.CallBatchResponse]:
        sent.set()
        await asyncio.Event().wait()
        yield policy_pb2.CallBatchResponse()

    batcher = CallBatcher(stalled)
    waiting = [asyncio.create_task(batcher.submit(_authorize("k"))) for _ in range(2)]
    await sent.wait()
    await batcher.close()
    outcomes = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 30)
    assert all(isinstance(o, BatcherClosed) for o in outcomes), outcomes
    with pytest.raises(BatcherClosed):
        await batcher.submit(_authorize("k"))
