"""Attack matrix: task and request-state forgery. A 2025-11-25 task id and a 2026-07-28
`requestState` are valid only unchanged, unexpired, and where they were issued (org,
toolkit, principal, tool, arguments). Anything else is refused like an unknown task or an
invalid state, runs nothing, leaves the approval usable by its owner, and is audited."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from mcp_front.mcp.approval_flows import REQUEST_STATE, TASK
from mcp_front.mcp.signed_state import BoundIds, StateSigner
from policy_service.client import APPROVAL_STATUS_NAMES
from tests.support.attack_stack import MODERN, Stack, new_request_id, rpc, tools_call

pytestmark = pytest.mark.asyncio(loop_scope="module")

INVALID_PARAMS = -32602
# Where the front fails: a forged requestState is refused inside tools/call, which the audit
# middleware leaves to the call path, and the call path raises before anything records it.


def _member(stack: Stack) -> str:
    return stack.keys["acme:member"]


async def _status(stack: Stack, approval_id: str) -> str:
    return APPROVAL_STATUS_NAMES[(await stack.operator.get_approval(approval_id)).status]


async def _approve(stack: Stack, approval_id: str) -> None:
    async with stack.client("acme:admin") as admin:
        await admin.decide_approval(approval_id, approve=True)


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


# --- 2025-11-25 tasks ------------------------------------------------------------------


@dataclass(frozen=True)
class TaskAttack:
    id: str
    created_on: str  # toolkit the genuine task was created on
    path: str  # where the attacker presents it
    bearer: Callable[[Stack], str]
    task_id: Callable[[Stack, str, str], str]  # (stack, genuine task id, approval id) -> presented id


def _signed(stack: Stack, subject: str, binding: tuple[str, ...], ttl: float) -> str:
    """A task id signed with the real key: what only the front can make."""
    return BoundIds(StateSigner(stack.settings.request_state_key), TASK).issue(subject, binding, ttl)


def _member_id(stack: Stack) -> str:
    return stack.keys["acme:member"][5:21]  # the key's public id: its principal id


GENUINE = lambda s, t, a: t  # noqa: E731
TASK_ATTACKS = [
    TaskAttack("mac-tampered", "acme/tools", "/acme/tools/mcp", _member, lambda s, t, a: _flip(t, -1)),
    TaskAttack("mac-truncated", "acme/tools", "/acme/tools/mcp", _member, lambda s, t, a: t[:-3]),
    TaskAttack(
        "expiry-extended",
        "acme/tools",
        "/acme/tools/mcp",
        _member,
        lambda s, t, a: ".".join([t.split(".")[0], str(int(t.split(".")[1]) + 1), t.split(".")[2]]),
    ),
    TaskAttack("bare-approval-id", "acme/tools", "/acme/tools/mcp", _member, lambda s, t, a: a),
    TaskAttack(
        "approval-id-with-junk-mac",
        "acme/tools",
        "/acme/tools/mcp",
        _member,
        lambda s, t, a: f"{a}.{int(time.time()) + 600}.AAAA",
    ),
    TaskAttack(
        "expired-but-signed",
        "acme/tools",
        "/acme/tools/mcp",
        _member,
        lambda s, t, a: _signed(s, t.split(".")[0], ("acme", "tools", _member_id(s)), -60),
    ),
    TaskAttack(
        "signed-with-another-key",
        "acme/tools",
        "/acme/tools/mcp",
        _member,
        lambda s, t, a: BoundIds(StateSigner("another-key-" + "z" * 32), TASK).issue(
            a, ("acme", "tools", _member_id(s)), 600
        ),
    ),
    TaskAttack("other-private-toolkit", "acme/tools", "/acme/other/mcp", _member, GENUINE),
    TaskAttack("public-toolkit", "acme/tools", "/acme/shared/mcp", _member, GENUINE),
    TaskAttack("other-member", "acme/tools", "/acme/tools/mcp", lambda s: s.keys["acme:member2"], GENUINE),
    TaskAttack("org-admin", "acme/tools", "/acme/tools/mcp", lambda s: s.keys["acme:admin"], GENUINE),
    TaskAttack("member-jwt", "acme/tools", "/acme/tools/mcp", lambda s: s.jwt("bob@acme.test", "acme"), GENUINE),
    TaskAttack("other-org-same-toolkit", "acme/shared", "/acme/shared/mcp", lambda s: s.keys["globex:member"], GENUINE),
    TaskAttack("other-org-own-toolkit", "acme/tools", "/globex/gx/mcp", lambda s: s.keys["globex:member"], GENUINE),
    TaskAttack(
        "rebound-to-attacker",
        "acme/tools",
        "/acme/tools/mcp",
        lambda s: s.keys["acme:member2"],
        # Even a correctly signed id for the attacker's binding names a task the attacker does not own.
        lambda s, t, a: _signed(s, t.split(".")[0], ("acme", "tools", s.keys["acme:member2"][5:21]), 600),
    ),
]


async def _task(stack: Stack, toolkit: str, arguments: dict[str, Any]) -> tuple[str, str]:
    created = await stack.post(f"/{toolkit}/mcp", _member(stack), tools_call("transfer", arguments, task={}))
    result = created.json()["result"]
    return str(result["task"]["taskId"]), str(result["_meta"]["monomcp/approval"]["id"])


@pytest.mark.parametrize("method", ["tasks/get", "tasks/result"])
@pytest.mark.parametrize("case", TASK_ATTACKS, ids=lambda c: c.id)
async def test_a_forged_or_replayed_task_id_is_an_unknown_task(stack: Stack, case: TaskAttack, method: str) -> None:
    arguments = {"amount": 20, "to": f"task-{case.id}-{method}"}
    task_id, approval_id = await _task(stack, case.created_on, arguments)
    await _approve(stack, approval_id)
    before = stack.executions()
    request_id = new_request_id(case.id)
    presented = case.task_id(stack, task_id, approval_id)
    response = await stack.post(
        case.path, case.bearer(stack), rpc(method, {"taskId": presented}), request_id=request_id
    )
    assert response.status_code == 200 and response.json()["error"] == {
        "code": INVALID_PARAMS,
        "message": "Unknown task",
    }
    assert "transfer" not in response.text and str(arguments["to"]) not in response.text
    assert stack.executions() == before
    rows = await stack.audit_rows(request_id)
    assert [(r["method"], r["status"], r["error"]) for r in rows] == [(method, "error", "Unknown task")]
    assert await _status(stack, approval_id) == "approved"
    # The task still belongs to its owner: their tasks/result runs it once, and only once.
    done = await stack.post(f"/{case.created_on}/mcp", _member(stack), rpc("tasks/result", {"taskId": task_id}))
    assert not done.json()["result"].get("isError") and stack.executions() == before + 1
    again = await stack.post(f"/{case.created_on}/mcp", _member(stack), rpc("tasks/result", {"taskId": task_id}))
    assert again.json()["result"] == done.json()["result"] and stack.executions() == before + 1


# --- 2026-07-28 requestState -----------------------------------------------------------


@dataclass(frozen=True)
class StateAttack:
    id: str
    issued_on: str
    path: str
    bearer: Callable[[Stack], str]
    state: Callable[[Stack, str, str], str]  # (stack, genuine state, approval id) -> presented
    arguments: Callable[[dict[str, Any]], dict[str, Any]]
    message: str


def _resign(stack: Stack, state: str, ttl: float, **changes: Any) -> str:
    """The genuine state's payload, changed and signed with the real key."""
    import base64
    import json

    body = state.split(".")[0]
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload = {k: v for k, v in (payload | changes).items() if k not in ("k", "x")}
    return StateSigner(stack.settings.request_state_key).sign(REQUEST_STATE, payload, ttl)


SAME = lambda a: dict(a)  # noqa: E731
STATE_ATTACKS = [
    StateAttack(
        "mac-tampered",
        "acme/tools",
        "/acme/tools/mcp",
        _member,
        lambda s, t, a: _flip(t, -2),
        SAME,
        "signature mismatch",
    ),
    StateAttack(
        "body-tampered",
        "acme/tools",
        "/acme/tools/mcp",
        _member,
        lambda s, t, a: _flip(t, 10),
        SAME,
        "signature mismatch",
    ),
    StateAttack(
        "garbage",
        "acme/tools",
        "/acme/tools/mcp",
        _member,
        lambda s, t, a: "eyJhIjoiYiJ9.AAAA",
        SAME,
        "signature mismatch",
    ),
    StateAttack("no-mac", "acme/tools", "/acme/tools/mcp", _member, lambda s, t, a: t.split(".")[0], SAME, "malformed"),
    StateAttack(
        "signed-with-another-key",
        "acme/tools",
        "/acme/tools/mcp",
        _member,
        lambda s, t, a: StateSigner("another-key-" + "z" * 32).sign(REQUEST_STATE, {"a": a}, 600),
        SAME,
        "signature mismatch",
    ),
    StateAttack(
        "expired-but-signed",
        "acme/tools",
        "/acme/tools/mcp",
        _member,
        lambda s, t, a: _resign(s, t, -60),
        SAME,
        "expired",
    ),
    StateAttack(
        "task-id-as-state",
        "acme/tools",
        "/acme/tools/mcp",
        _member,
        lambda s, t, a: _signed(s, a, ("acme", "tools", _member_id(s)), 600),
        SAME,
        "malformed",
    ),
    StateAttack(
        "other-arguments",
        "acme/tools",
        "/acme/tools/mcp",
        _member,
        lambda s, t, a: t,
        lambda a: a | {"amount": 999},
        "another call",
    ),
    StateAttack(
        "other-member",
        "acme/tools",
        "/acme/tools/mcp",
        lambda s: s.keys["acme:member2"],
        lambda s, t, a: t,
        SAME,
        "another call",
    ),
    StateAttack(
        "org-admin",
        "acme/tools",
        "/acme/tools/mcp",
        lambda s: s.keys["acme:admin"],
        lambda s, t, a: t,
        SAME,
        "another call",
    ),
    StateAttack("other-toolkit", "acme/tools", "/acme/other/mcp", _member, lambda s, t, a: t, SAME, "another call"),
    StateAttack(
        "other-org-on-public",
        "acme/shared",
        "/acme/shared/mcp",
        lambda s: s.keys["globex:member"],
        lambda s, t, a: t,
        SAME,
        "another call",
    ),
]


async def _input_required(stack: Stack, toolkit: str, arguments: dict[str, Any]) -> tuple[str, str]:
    response = await stack.post(
        f"/{toolkit}/mcp", _member(stack), tools_call("transfer", arguments, version=MODERN), version=MODERN
    )
    result = response.json()["result"]
    assert result["resultType"] == "input_required", result
    url = result["inputRequests"]["approval"]["params"]["url"]
    return str(result["requestState"]), str(url.rsplit("/", 1)[1])


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in STATE_ATTACKS])
async def test_a_forged_or_replayed_request_state_runs_nothing_and_is_audited(stack: Stack, case: StateAttack) -> None:
    arguments = {"amount": 30, "to": f"state-{case.id}"}
    state, approval_id = await _input_required(stack, case.issued_on, arguments)
    await _approve(stack, approval_id)
    before = stack.executions()
    request_id = new_request_id(case.id)
    presented = case.state(stack, state, approval_id)
    body = tools_call("transfer", case.arguments(arguments), version=MODERN, requestState=presented)
    response = await stack.post(case.path, case.bearer(stack), body, version=MODERN, request_id=request_id)
    error = response.json()["error"]
    assert error["code"] == INVALID_PARAMS and "Invalid requestState" in error["message"], error
    assert case.message in error["message"]
    assert stack.executions() == before
    assert await _status(stack, approval_id) == "approved"
    retry = tools_call("transfer", arguments, version=MODERN, requestState=state)
    done = await stack.post(f"/{case.issued_on}/mcp", _member(stack), retry, version=MODERN)
    assert not done.json()["result"].get("isError") and stack.executions() == before + 1
    rows = await stack.audit_rows(request_id)  # the refusal itself must be on record
    assert [(r["method"], r["status"] in ("invalid", "error")) for r in rows] == [("tools/call", True)]
    assert "requestState" in rows[0]["error"] and rows[0]["decision"] != "allow"
