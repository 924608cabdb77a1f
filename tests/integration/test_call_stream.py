"""CallStream: one long-lived stream carries a front's authorize and complete items; each
item keeps the answer and the error its unary RPC (and CallBatch) gives, a broken stream
fails its items closed without sending them again, and an older server without the RPC is
still served the unary way (ADR 0029)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import code_pb2

from policy_service import errors
from policy_service._generated.monomcp.policy.v1 import policy_pb2, policy_pb2_grpc
from policy_service.api.call_stream import READY
from policy_service.api.server import start
from policy_service.client import DECISION_ALLOW, DECISION_BLOCKED, PolicyClient
from policy_service.config import Settings
from tests.conftest import World
from tests.integration.test_call_batch import _authorize, _batch, _complete

_SERVICE = "monomcp.policy.v1.PolicyService"


def _with_ids(*items: policy_pb2.CallBatchItem, first: int = 0) -> list[policy_pb2.CallBatchItem]:
    for offset, item in enumerate(items):
        item.id = first + offset
    return list(items)


async def _stream(
    world: World, *messages: list[policy_pb2.CallBatchItem], token: str | None = None
) -> list[policy_pb2.CallBatchResult]:
    """Sends each message after the previous one's results came back; the results by id."""
    async with grpc.aio.insecure_channel(world.policy_addr) as channel:
        call = policy_pb2_grpc.PolicyServiceStub(channel).CallStream(
            metadata=(("authorization", f"Bearer {token or world.service_token}"),)
        )
        results: list[policy_pb2.CallBatchResult] = []
        for items in messages:
            await call.write(policy_pb2.CallBatchRequest(items=items))
            while len(results) < sum(len(m) for m in messages[: messages.index(items) + 1]):
                response = await call.read()
                assert response is not grpc.aio.EOF
                results.extend(response.results)
        await call.done_writing()
        assert await call.read() is grpc.aio.EOF
    return sorted(results, key=lambda r: r.index)


def _shape(result: policy_pb2.CallBatchResult) -> tuple[str, int, str]:
    kind = result.WhichOneof("result") or ""
    if kind == "authorize":
        return kind, result.authorize.decision, result.authorize.backend.url
    if kind == "error":
        return kind, result.error.code, result.error.reason
    return kind, 0, ""


async def test_each_item_gets_the_answer_callbatch_gives(world: World) -> None:
    member = world.keys["acme:member"]
    asked = [_authorize(member), _authorize(member, "wipe"), _authorize("mmcp_not_a_real_key")]
    batched = await _batch(world, *asked)
    streamed = await _stream(world, _with_ids(*asked, first=7))
    assert [r.index for r in streamed] == [7, 8, 9]
    assert [_shape(r) for r in streamed] == [_shape(r) for r in batched]
    assert streamed[0].authorize.decision == DECISION_ALLOW and streamed[1].authorize.decision == DECISION_BLOCKED
    call_id = streamed[0].authorize.call_id
    done, again, unknown = await _stream(
        world, _with_ids(_complete(call_id)), _with_ids(_complete(call_id), _complete("0" * 32), first=1)
    )
    assert done.WhichOneof("result") == "complete"
    assert again.error.code == code_pb2.FAILED_PRECONDITION and again.error.reason == "CALL_ALREADY_COMPLETED"
    assert unknown.error.code == code_pb2.NOT_FOUND and unknown.error.reason == "CALL_NOT_FOUND"


async def test_a_stream_needs_the_execute_scope(world: World) -> None:
    reader = await world.operator.create_service_identity("stream-reader", ["read"])
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await _stream(world, _with_ids(_authorize(world.keys["acme:member"])), token=reader.secret)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_bad_message_ends_its_own_stream_only(world: World) -> None:
    member = world.keys["acme:member"]
    async with grpc.aio.insecure_channel(world.policy_addr) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        metadata = (("authorization", f"Bearer {world.service_token}"),)
        good, bad = stub.CallStream(metadata=metadata), stub.CallStream(metadata=metadata)
        await bad.write(policy_pb2.CallBatchRequest(items=[_authorize(member)] * 1025))
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await bad.read()
        assert ended.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        await good.write(policy_pb2.CallBatchRequest(items=_with_ids(_authorize(member))))
        answer = await good.read()
        assert answer is not grpc.aio.EOF and answer.results[0].authorize.decision == DECISION_ALLOW
        await good.done_writing()


async def test_a_duplicate_id_in_flight_fails_that_item_only(world: World) -> None:
    member = world.keys["acme:member"]
    twins = [_authorize(member), _authorize(member)]  # both id 0, in one message
    results = await _stream(world, twins)
    assert sorted(_shape(r)[0] for r in results) == ["authorize", "error"]
    assert [r.error.reason for r in results if r.WhichOneof("result") == "error"] == ["DUPLICATE_ITEM_ID"]


async def test_client_on_a_stream_keeps_the_unary_answers_and_errors(world: World) -> None:
    member = world.keys["acme:member"]
    async with PolicyClient(world.policy_addr, service_token=world.service_token, stream=True) as client:
        decisions = await asyncio.gather(
            *(client.authorize_tool_call(member, "acme", "tools", "echo", "{}") for _ in range(40))
        )
        assert {d.decision for d in decisions} == {DECISION_ALLOW} and len({d.call_id for d in decisions}) == 40
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
        assert client._streams is not None and client._streams.opened() == 1  # they went on the stream


async def test_a_revoked_service_identity_is_not_served_on_an_open_stream(world: World) -> None:
    created = await world.operator.create_service_identity("stream-short-lived", ["front"])
    member = world.keys["acme:member"]
    async with PolicyClient(world.policy_addr, service_token=created.secret, stream=True) as client:
        decision = await client.authorize_tool_call(member, "acme", "tools", "echo", "{}")
        assert decision.decision == DECISION_ALLOW
        await world.operator.revoke_service_identity("stream-short-lived")
        with pytest.raises(errors.Unauthenticated):
            await client.authorize_tool_call(member, "acme", "tools", "echo", "{}")


# --- Servers that are not ours: one that takes items and never answers, one without CallStream.


async def _serve(handlers: dict[str, grpc.RpcMethodHandler]) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def _stream_handler(handler: object) -> grpc.RpcMethodHandler:
    return grpc.stream_stream_rpc_method_handler(
        handler,
        request_deserializer=policy_pb2.CallBatchRequest.FromString,
        response_serializer=policy_pb2.CallBatchResponse.SerializeToString,
    )


async def test_a_stream_that_breaks_mid_flight_fails_its_items_closed_and_sends_none_twice() -> None:
    received: list[policy_pb2.CallBatchItem] = []
    all_in = asyncio.Event()

    async def swallow(
        requests: AsyncIterator[policy_pb2.CallBatchRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[policy_pb2.CallBatchResponse]:
        await context.send_initial_metadata(READY)
        async for request in requests:
            received.extend(request.items)
            if len(received) == 3:
                all_in.set()
        if False:
            yield policy_pb2.CallBatchResponse()

    server, address = await _serve({"CallStream": _stream_handler(swallow)})
    client = PolicyClient(address, service_token="mmcp_svc_x", stream=True, timeout=30)
    try:
        waiting = [
            asyncio.ensure_future(client.authorize_tool_call("k", "acme", "tools", f"t{n}", "{}")) for n in range(3)
        ]
        await all_in.wait()
        await server.stop(0)  # the stream breaks with three authorizes decided-or-not
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    finally:
        await client.close()
    assert all(isinstance(o, errors.PolicyUnavailable) for o in outcomes), outcomes
    assert sorted(item.authorize.tool for item in received) == ["t0", "t1", "t2"]  # each sent once


def _unary_authorize(decided: list[str]) -> grpc.RpcMethodHandler:
    async def authorize(
        request: policy_pb2.AuthorizeToolCallRequest, context: grpc.aio.ServicerContext
    ) -> policy_pb2.AuthorizeToolCallResponse:
        decided.append(request.tool)
        return policy_pb2.AuthorizeToolCallResponse(decision=DECISION_ALLOW, call_id=f"id-{request.tool}")

    return grpc.unary_unary_rpc_method_handler(
        authorize,
        request_deserializer=policy_pb2.AuthorizeToolCallRequest.FromString,
        response_serializer=policy_pb2.AuthorizeToolCallResponse.SerializeToString,
    )


async def test_items_a_draining_stream_did_not_decide_go_the_unary_way_once() -> None:
    """A stream that ends OK answered every item it decided; the rest are sent again, once."""
    decided: list[str] = []
    taken = asyncio.Event()

    async def drains(
        requests: AsyncIterator[policy_pb2.CallBatchRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[policy_pb2.CallBatchResponse]:
        await context.send_initial_metadata(READY)
        async for _ in requests:
            taken.set()
            return  # ends OK without deciding what it read
        yield policy_pb2.CallBatchResponse()

    server, address = await _serve(
        {"CallStream": _stream_handler(drains), "AuthorizeToolCall": _unary_authorize(decided)}
    )
    try:
        async with PolicyClient(address, service_token="mmcp_svc_x", stream=True) as client:
            # One at a time, so the fallback is the unary RPC (several would share a CallBatch).
            answers = [await client.authorize_tool_call("k", "acme", "tools", f"t{n}", "{}") for n in range(3)]
            assert taken.is_set()
    finally:
        await server.stop(0)
    assert [a.call_id for a in answers] == ["id-t0", "id-t1", "id-t2"]
    assert sorted(decided) == ["t0", "t1", "t2"]


async def test_a_stopping_policy_service_ends_its_streams_ok_after_answering(world: World, settings: Settings) -> None:
    second = await start(settings, "127.0.0.1:0")
    stopped = False
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as channel:
            call = policy_pb2_grpc.PolicyServiceStub(channel).CallStream(
                metadata=(("authorization", f"Bearer {world.service_token}"),)
            )
            await call.write(policy_pb2.CallBatchRequest(items=_with_ids(_authorize(world.keys["acme:member"]))))
            answer = await call.read()
            assert answer is not grpc.aio.EOF and answer.results[0].authorize.decision == DECISION_ALLOW
            stopping = asyncio.ensure_future(second.stop(5.0))
            assert await call.read() is grpc.aio.EOF
            assert await call.code() == grpc.StatusCode.OK
            await stopping
            stopped = True
    finally:
        if not stopped:
            await second.stop(0.5)


async def test_an_older_server_without_callstream_is_served_the_unary_way() -> None:
    server, address = await _serve({"AuthorizeToolCall": _unary_authorize([])})
    try:
        async with PolicyClient(address, service_token="mmcp_svc_x", stream=True) as client:
            first = await client.authorize_tool_call("k", "acme", "tools", "a", "{}")
            second = await client.authorize_tool_call("k", "acme", "tools", "b", "{}")
    finally:
        await server.stop(0)
    assert (first.call_id, second.call_id) == ("id-a", "id-b")


async def test_closing_the_client_answers_every_item_waiting_on_a_stream() -> None:
    """A stalled stream (the server reads and never answers): close() fails its callers closed."""
    taken = asyncio.Event()

    async def stall(
        requests: AsyncIterator[policy_pb2.CallBatchRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[policy_pb2.CallBatchResponse]:
        await context.send_initial_metadata(READY)
        async for _ in requests:
            taken.set()
        await asyncio.Event().wait()
        yield policy_pb2.CallBatchResponse()

    server, address = await _serve({"CallStream": _stream_handler(stall)})
    try:
        client = PolicyClient(address, service_token="mmcp_svc_x", stream=True, timeout=30)
        waiting = [
            asyncio.ensure_future(client.authorize_tool_call("k", "acme", "tools", f"t{n}", "{}")) for n in range(2)
        ]
        await taken.wait()
        await client.close()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    finally:
        await server.stop(0)
    assert all(isinstance(o, errors.PolicyUnavailable) and "closed" in str(o) for o in outcomes), outcomes
