"""Attack matrix: the PolicyService hot path on the gRPC port. Only a service identity with
the right scope is answered; a call completes once, only by the identity allowed to run it;
a refused RPC writes nothing (no forged row, no overwritten call)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from policy_service import errors
from policy_service._generated.monomcp.policy.v1 import policy_pb2, policy_pb2_grpc, types_pb2
from policy_service.client import DECISION_ALLOW, PolicyClient
from policy_service.status_codes import reason_of
from tests.support.attack_stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

FORGED_MARK = "6.6.6.6"  # the client address a forged row would carry


async def _started_call(stack: Stack) -> str:
    async with stack.service() as front:
        decision = await front.authorize_tool_call(stack.keys["acme:member"], "acme", "tools", "echo", "{}")
    assert decision.decision == DECISION_ALLOW
    return str(decision.call_id)


def _requests(stack: Stack, call_id: str, approval_id: str, mark: str) -> dict[str, Any]:
    member = stack.keys["acme:member"]
    meta = types_pb2.RequestMeta(request_id=mark, client_address=FORGED_MARK, user_agent="forger")
    return {
        "ListTools": policy_pb2.ListToolsRequest(credential=member, org_slug="acme", toolkit_slug="shared"),
        "AuthorizeToolCall": policy_pb2.AuthorizeToolCallRequest(
            credential=member, org_slug="acme", toolkit_slug="shared", tool="echo", arguments_json="{}", meta=meta
        ),
        "CompleteToolCall": policy_pb2.CompleteToolCallRequest(
            call_id=call_id, status="ok", response_json='{"forged": true}'
        ),
        "GetApprovalStatus": policy_pb2.GetApprovalStatusRequest(credential=member, approval_id=approval_id),
        "RecordRequest": policy_pb2.RecordRequestRequest(
            credential=member,
            org_slug="acme",
            toolkit_slug="tools",
            method="tools/call",
            tool="echo",
            status="invalid",  # what RecordRequest is for: a request that never reached the tool
            meta=meta,
        ),
    }


async def _raw(stack: Stack, rpc: str, request: Any, metadata: list[tuple[str, str]]) -> tuple[grpc.StatusCode, str]:
    """Calls one PolicyService RPC with exactly `metadata`; the status and ErrorInfo reason."""
    async with grpc.aio.insecure_channel(stack.policy_addr) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        try:
            await getattr(stub, rpc)(request, metadata=metadata, timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code(), reason_of(exc)
    return grpc.StatusCode.OK, ""


async def _revoked_identity(stack: Stack) -> str:
    created = await stack.operator.create_service_identity(f"revoked-{uuid.uuid4().hex[:8]}", ["front"])
    await stack.operator.revoke_service_identity(created.identity.id)
    return str(created.secret)


async def _console_session(stack: Stack) -> str:
    async with stack.client("acme:admin") as admin:
        return str((await admin.create_console_session()).token)


def _bearer(build: Callable[[Stack], str]) -> Callable[[Stack], Any]:
    async def make(stack: Stack) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {build(stack)}")]

    return make


def _bearer_async(build: Callable[[Stack], Any]) -> Callable[[Stack], Any]:
    async def make(stack: Stack) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {await build(stack)}")]

    return make


async def _no_metadata(stack: Stack) -> list[tuple[str, str]]:
    return []


async def _basic_scheme(stack: Stack) -> list[tuple[str, str]]:
    return [("authorization", f"Basic {stack.service_token}")]


async def _service_in_other_header(stack: Stack) -> list[tuple[str, str]]:
    return [("x-service-token", stack.service_token)]


NOT_A_SERVICE = {
    "no-metadata": _no_metadata,
    "empty-bearer": _bearer(lambda s: ""),
    "member-key": _bearer(lambda s: s.keys["acme:member"]),
    "admin-key": _bearer(lambda s: s.keys["acme:admin"]),
    "operator-token": _bearer(lambda s: s.settings.operator_token),
    "admin-jwt": _bearer(lambda s: s.jwt("alice@acme.test", "acme")),
    "console-session": _bearer_async(_console_session),
    "forged-service-credential": _bearer(lambda s: "mmcpsvc_" + "A" * 54),
    "service-credential-tampered": _bearer(
        lambda s: s.service_token[:-1] + ("A" if s.service_token[-1] != "A" else "B")
    ),
    "revoked-service-identity": _bearer_async(_revoked_identity),
    "service-credential-basic-scheme": _basic_scheme,
    "service-credential-wrong-header": _service_in_other_header,
}
RPCS = ["ListTools", "AuthorizeToolCall", "CompleteToolCall", "GetApprovalStatus", "RecordRequest"]


@pytest.mark.parametrize("rpc", RPCS)
@pytest.mark.parametrize("caller", list(NOT_A_SERVICE))
async def test_hot_path_refuses_every_caller_without_a_service_identity(stack: Stack, caller: str, rpc: str) -> None:
    metadata = await NOT_A_SERVICE[caller](stack)
    call_id = await _started_call(stack)
    approval_id = await stack.request_approval("acme:member", {"amount": 1, "to": f"{caller}-{rpc}"})
    mark = f"forged-{uuid.uuid4().hex}"
    before = stack.executions()
    code, reason = await _raw(stack, rpc, _requests(stack, call_id, approval_id, mark)[rpc], metadata)
    assert code == grpc.StatusCode.UNAUTHENTICATED, (code, reason)
    assert reason.startswith("SERVICE_CREDENTIAL"), reason
    assert stack.executions() == before
    assert await stack.audit_rows(mark) == []
    assert await stack.rows_where("completes = :v", call_id) == []


@dataclass(frozen=True)
class ScopeCase:
    scope: str
    rpc: str
    allowed: bool


SCOPE_NEEDED = {
    "ListTools": "read",
    "GetApprovalStatus": "read",
    "AuthorizeToolCall": "execute",
    "CompleteToolCall": "execute",
    "RecordRequest": "record",
}
SCOPE_CASES = [
    ScopeCase(scope, rpc, scope == needed)
    for scope in ("read", "execute", "record")
    for rpc, needed in SCOPE_NEEDED.items()
]


@pytest.mark.parametrize("case", SCOPE_CASES, ids=lambda c: f"{c.scope}-{c.rpc}-{'ok' if c.allowed else 'denied'}")
async def test_a_service_identity_reaches_only_the_rpcs_its_scopes_allow(stack: Stack, case: ScopeCase) -> None:
    identity = await stack.operator.create_service_identity(f"{case.scope}-{uuid.uuid4().hex[:8]}", [case.scope])
    # A call this identity would be allowed to complete: its own, when it may execute at all.
    owner = identity.secret if case.scope == "execute" else stack.service_token
    async with stack.service(owner) as runner:
        decision = await runner.authorize_tool_call(stack.keys["acme:member"], "acme", "tools", "echo", "{}")
    approval_id = await stack.request_approval("acme:member", {"amount": 2, "to": f"{case.scope}-{case.rpc}"})
    mark = f"scope-{uuid.uuid4().hex}"
    request = _requests(stack, decision.call_id, approval_id, mark)[case.rpc]
    code, reason = await _raw(stack, case.rpc, request, [("authorization", f"Bearer {identity.secret}")])
    if case.allowed:
        assert code == grpc.StatusCode.OK, (code, reason)
        return
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "SERVICE_SCOPE")
    assert await stack.audit_rows(mark) == []
    assert await stack.rows_where("completes = :v", decision.call_id) == []


async def test_completing_another_identitys_call_is_not_found_and_leaves_it_open(stack: Stack) -> None:
    other = await stack.operator.create_service_identity(f"other-{uuid.uuid4().hex[:8]}", ["front"])
    call_id = await _started_call(stack)
    async with PolicyClient(stack.policy_addr, service_token=other.secret) as intruder:
        with pytest.raises(errors.NotFound) as refused:
            await intruder.complete_tool_call(call_id, "ok", '{"forged": true}')
    assert refused.value.reason == "CALL_NOT_FOUND"
    assert await stack.rows_where("completes = :v", call_id) == []
    async with stack.service() as front:  # the call's own runner still completes it
        await front.complete_tool_call(call_id, "ok", '{"content": []}')
    completions = await stack.rows_where("completes = :v", call_id)
    assert [(r["status"], json.loads(r["response_payload"])) for r in completions] == [("ok", {"content": []})]


async def test_a_call_completes_once(stack: Stack) -> None:
    call_id = await _started_call(stack)
    async with stack.service() as front:
        await front.complete_tool_call(call_id, "ok", '{"content": [{"type": "text", "text": "first"}]}')
        for status in ("ok", "error", "cancelled"):
            with pytest.raises(errors.FailedPrecondition) as refused:
                await front.complete_tool_call(call_id, status, '{"overwritten": true}')
            assert refused.value.reason == "CALL_ALREADY_COMPLETED"
    rows = await stack.rows_where("call_id = :v OR completes = :v", call_id)
    assert [r["status"] for r in rows] == ["started", "ok"]
    assert "first" in rows[1]["response_payload"] and "overwritten" not in json.dumps(rows, default=str)


@pytest.mark.parametrize("target", ["denied-row", "recorded-row", "completion-row", "unknown-id", "started-status"])
async def test_only_a_started_call_can_be_completed(stack: Stack, target: str) -> None:
    async with stack.service() as front:
        if target == "denied-row":
            blocked = await front.authorize_tool_call(stack.keys["acme:member"], "acme", "tools", "wipe", "{}")
            call_id, status = blocked.call_id, "ok"
        elif target == "recorded-row":
            call_id = await front.record_request(stack.keys["acme:member"], "acme", "tools", "ping")
            status = "ok"
        elif target == "completion-row":
            started = await _started_call(stack)
            await front.complete_tool_call(started, "ok", "{}")
            call_id, status = (await stack.rows_where("completes = :v", started))[0]["call_id"], "ok"
        elif target == "unknown-id":
            call_id, status = uuid.uuid4().hex, "ok"
        else:
            call_id, status = await _started_call(stack), "started"
        expected = errors.InvalidArgument if status == "started" else errors.NotFound
        with pytest.raises(expected):
            await front.complete_tool_call(call_id, status, '{"forged": true}')
    assert await stack.rows_where("completes = :v", call_id) == []


def _authorize_item(stack: Stack, mark: str, n: int) -> policy_pb2.CallBatchItem:
    request = policy_pb2.AuthorizeToolCallRequest(
        credential=stack.keys["acme:member"],
        org_slug="acme",
        toolkit_slug="tools",
        tool="echo",
        arguments_json=json.dumps({"n": n}),
        meta=types_pb2.RequestMeta(request_id=mark),
    )
    return policy_pb2.CallBatchItem(authorize=request, id=n)


async def _batched_and_streamed_call_ids(stack: Stack, items: list[policy_pb2.CallBatchItem]) -> list[str]:
    """The call ids CallBatch and CallStream give these items (each sent through both)."""
    metadata = (("authorization", f"Bearer {stack.service_token}"),)
    async with grpc.aio.insecure_channel(stack.policy_addr) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        batch = stub.CallBatch(policy_pb2.CallBatchRequest(items=items), metadata=metadata)
        results = [r async for m in batch for r in m.results]
        stream = stub.CallStream(metadata=metadata)
        await stream.write(policy_pb2.CallBatchRequest(items=items))
        while len(results) < 2 * len(items):
            answer = await stream.read()
            assert answer is not grpc.aio.EOF
            results.extend(answer.results)
        await stream.done_writing()
    assert all(r.WhichOneof("result") == "authorize" for r in results), results
    return [r.authorize.call_id for r in results]


async def test_no_caller_can_give_two_started_rows_one_call_id(stack: Stack) -> None:
    """Call ids are minted by the policy service (`new_id`, 122 random bits) for every row; nothing
    a service identity sends (request id, item id, identical requests, unary, CallBatch or
    CallStream) becomes one. So the (call_id, call_at) unique index of the partitioned Postgres
    table, which does not compare ids across partitions, never meets two rows of one id, and a
    completion attaches to exactly the row it names (ADR 0051)."""
    mark = f"same-ids-{uuid.uuid4().hex}"
    # The same two items through CallBatch and CallStream, then the first twice more, unary.
    called = await _batched_and_streamed_call_ids(stack, [_authorize_item(stack, mark, n) for n in (1, 2)])
    async with stack.service() as front:
        for _ in range(2):
            decision = await front.authorize_tool_call(
                stack.keys["acme:member"], "acme", "tools", "echo", '{"n": 1}', request_id=mark
            )
            called.append(decision.call_id)
    rows = await stack.audit_rows(mark)
    assert sorted(r["call_id"] for r in rows) == sorted(called) and len(set(called)) == len(called) == 6
    assert all(r["status"] == "started" and len(r["call_id"]) == 32 and r["call_id"] != mark for r in rows)
    async with stack.service() as front:
        for call_id in called:
            await front.complete_tool_call(call_id, "ok", json.dumps({"done": call_id}))
    started = {r["call_id"]: r for r in rows}
    for call_id in called:  # each completion attached to the one row it names, in its partition
        (completion,) = await stack.rows_where("completes = :v", call_id)
        assert completion["call_at"] == started[call_id]["call_at"] and call_id in completion["response_payload"]


@pytest.mark.parametrize(
    ("credential", "reason"),
    [
        (lambda s: "", "MISSING_CREDENTIAL"),
        (lambda s: s.service_token, "UNKNOWN_CREDENTIAL"),
        (lambda s: s.keys["acme:member"][:-1], "KEY_MALFORMED"),
    ],
    ids=["blank", "service-credential-as-user", "malformed-key"],
)
async def test_authorize_with_a_bad_user_credential_refuses_and_writes_its_row(
    stack: Stack, credential: Callable[[Stack], str], reason: str
) -> None:
    mark = f"user-cred-{uuid.uuid4().hex}"
    async with stack.service() as front:
        with pytest.raises(errors.Unauthenticated) as refused:
            await front.authorize_tool_call(credential(stack), "acme", "tools", "echo", "{}", request_id=mark)
    assert refused.value.reason == reason
    assert [r["status"] for r in await stack.audit_rows(mark)] == ["unauthenticated"]


async def test_a_console_session_is_no_user_credential_on_the_hot_path(stack: Stack) -> None:
    session = await _console_session(stack)
    mark = f"session-{uuid.uuid4().hex}"
    async with stack.service() as front:
        with pytest.raises(errors.Unauthenticated) as refused:
            await front.authorize_tool_call(session, "acme", "tools", "echo", "{}", request_id=mark)
        with pytest.raises(errors.Unauthenticated):
            await front.list_tools(session, "acme", "tools")
    assert refused.value.reason == "SESSION_NOT_ACCEPTED"
    rows = await stack.audit_rows(mark)
    assert [r["status"] for r in rows] == ["unauthenticated"] and session not in json.dumps(rows, default=str)


@pytest.mark.parametrize("stream", [True, False], ids=["call-stream", "call-batch"])
async def test_large_completions_leaving_together_sink_no_other_item(stack: Stack, stream: bool) -> None:
    """Completions that leave in one message: each fits the policy service's 16 MiB limit, not
    together. Before, they went in one CallStream/CallBatch message that the server refused,
    failing every item in it (or in flight on the stream), another tenant's call included: its
    result was withheld although its tool had run."""
    calls = [await _started_call(stack) for _ in range(3)]
    large = json.dumps({"content": [{"type": "text", "text": "x" * (9 * 1024 * 1024)}]})
    async with PolicyClient(stack.policy_addr, service_token=stack.service_token, stream=stream) as front:
        await asyncio.gather(
            front.complete_tool_call(calls[0], "ok", large),
            front.complete_tool_call(calls[1], "ok", large),
            front.complete_tool_call(calls[2], "ok", '{"content": []}'),
        )
    for call_id in calls:
        assert [r["status"] for r in await stack.rows_where("completes = :v", call_id)] == ["ok"]
