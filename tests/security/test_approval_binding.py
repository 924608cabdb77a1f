"""Attack matrix: approval binding. An approval runs exactly the call it was granted for —
same org, principal, toolkit, tool and arguments — exactly once; nobody approves their own
request (per person, not per credential); a consumed approval is never reused."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from policy_service import errors
from policy_service.client import APPROVAL_STATUS_NAMES, PolicyClient
from tests.support.attack_stack import Stack, new_request_id, tools_call

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALICE = "alice@acme.test"  # acme admin (signs in with JWTs)


async def _call(stack: Stack, bearer: str, toolkit: str, arguments: dict[str, Any], request_id: str = "") -> Any:
    response = await stack.post(
        f"/{toolkit}/mcp", bearer, tools_call("transfer", arguments), request_id=request_id or new_request_id("call")
    )
    assert response.status_code == 200, response.text
    return response.json()["result"]


async def _status(stack: Stack, approval_id: str) -> str:
    return APPROVAL_STATUS_NAMES[(await stack.operator.get_approval(approval_id)).status]


async def _approved(stack: Stack, who: str, toolkit: str, arguments: dict[str, Any]) -> str:
    """A call by `who` that needed approval, approved by acme's admin (or the operator)."""
    result = await _call(stack, stack.keys[who], toolkit, arguments)
    approval_id = str(result["_meta"]["monomcp/approval"]["id"])
    async with stack.client("acme:admin") as admin:  # members' requests: their org's admin decides
        await admin.decide_approval(approval_id, approve=True)
    return approval_id


@dataclass(frozen=True)
class Rebind:
    id: str
    approved_on: str  # the toolkit the victim's approval is for
    bearer: Callable[[Stack], str]
    toolkit: str
    arguments: Callable[[dict[str, Any]], dict[str, Any]]


SAME = lambda args: dict(args)  # noqa: E731
REBINDS = [
    Rebind(
        "different-amount", "acme/tools", lambda s: s.keys["acme:member"], "acme/tools", lambda a: a | {"amount": 999}
    ),
    Rebind(
        "different-recipient",
        "acme/tools",
        lambda s: s.keys["acme:member"],
        "acme/tools",
        lambda a: a | {"to": "mallory"},
    ),
    Rebind("extra-argument", "acme/tools", lambda s: s.keys["acme:member"], "acme/tools", lambda a: a | {"memo": "x"}),
    Rebind(
        "amount-as-float",
        "acme/tools",
        lambda s: s.keys["acme:member"],
        "acme/tools",
        lambda a: a | {"amount": float(a["amount"]) + 0.5},
    ),
    Rebind("other-member-same-org", "acme/tools", lambda s: s.keys["acme:member2"], "acme/tools", SAME),
    Rebind("member-jwt-same-org", "acme/tools", lambda s: s.jwt("bob@acme.test", "acme"), "acme/tools", SAME),
    Rebind("admin-of-same-org", "acme/tools", lambda s: s.keys["acme:admin"], "acme/tools", SAME),
    Rebind("another-org-on-public", "acme/shared", lambda s: s.keys["globex:member"], "acme/shared", SAME),
    Rebind(
        "another-org-admin-on-public", "acme/shared", lambda s: s.jwt("gina@globex.test", "globex"), "acme/shared", SAME
    ),
    Rebind("other-private-toolkit-same-tool", "acme/tools", lambda s: s.keys["acme:member"], "acme/other", SAME),
    Rebind("public-toolkit-same-tool", "acme/tools", lambda s: s.keys["acme:member"], "acme/shared", SAME),
    Rebind("private-approval-used-on-public", "acme/shared", lambda s: s.keys["acme:member"], "acme/tools", SAME),
]


@pytest.mark.parametrize("case", REBINDS, ids=lambda c: c.id)
async def test_an_approval_runs_only_the_call_it_was_granted_for(stack: Stack, case: Rebind) -> None:
    arguments = {"amount": 10, "to": f"carol-{case.id}"}
    approval_id = await _approved(stack, "acme:member", case.approved_on, arguments)
    before = stack.executions()
    request_id = new_request_id(case.id)
    result = await _call(stack, case.bearer(stack), case.toolkit, case.arguments(arguments), request_id)
    assert result["isError"] and stack.executions() == before
    assert result.get("_meta", {}).get("monomcp/approval", {}).get("id") != approval_id
    rows = await stack.audit_rows(request_id)
    assert len(rows) == 1 and rows[0]["decision"] != "allow" and rows[0]["approval_id"] != approval_id
    assert await _status(stack, approval_id) == "approved"
    # The victim's own call still runs, once.
    done = await _call(stack, stack.keys["acme:member"], case.approved_on, arguments)
    assert not done.get("isError") and stack.executions() == before + 1
    assert await _status(stack, approval_id) == "consumed"


async def test_a_consumed_approval_is_never_reused(stack: Stack) -> None:
    arguments = {"amount": 11, "to": "reuse"}
    approval_id = await _approved(stack, "acme:member", "acme/tools", arguments)
    before = stack.executions()
    first = await _call(stack, stack.keys["acme:member"], "acme/tools", arguments)
    assert not first.get("isError") and stack.executions() == before + 1
    request_id = new_request_id("reuse")
    again = await _call(stack, stack.keys["acme:member"], "acme/tools", arguments, request_id)
    assert again["isError"] and "already used" in again["content"][0]["text"]
    assert stack.executions() == before + 1
    rows = await stack.audit_rows(request_id)
    assert [(r["status"], r["approval_id"]) for r in rows] == [("denied", approval_id)]
    pending = await stack.operator.list_approvals("acme", status="pending")
    assert all("reuse" not in a.arguments_json for a in pending.approvals)


async def test_concurrent_re_calls_run_once_and_open_nothing(stack: Stack) -> None:
    arguments = {"amount": 12, "to": "race"}
    await _approved(stack, "acme:member", "acme/tools", arguments)
    before = stack.executions()
    results = await asyncio.gather(
        *(_call(stack, stack.keys["acme:member"], "acme/tools", arguments) for _ in range(6))
    )
    assert sum(not r.get("isError") for r in results) == 1
    assert stack.executions() == before + 1
    pending = await stack.operator.list_approvals("acme", status="pending")
    assert all("race" not in a.arguments_json for a in pending.approvals)


@dataclass(frozen=True)
class SelfApproval:
    id: str
    requester: Callable[[Stack], str]
    approver: Callable[[Stack], Any]  # the approver's credential (may need an RPC to make)
    reason: str


async def _session_of(stack: Stack, credential: str) -> str:
    async with PolicyClient(stack.policy_addr, credential) as client:
        return str((await client.create_console_session()).token)


def _alice_jwt(stack: Stack) -> str:
    return stack.jwt(ALICE, "acme", jti=uuid.uuid4().hex)


def _now(value: Callable[[Stack], str]) -> Callable[[Stack], Any]:
    async def make(stack: Stack) -> str:
        return value(stack)

    return make


SELF_APPROVALS = [
    SelfApproval(
        "same-admin-key", lambda s: s.keys["acme:admin"], _now(lambda s: s.keys["acme:admin"]), "SELF_APPROVAL"
    ),
    SelfApproval(
        "second-admin-key", lambda s: s.keys["acme:admin"], _now(lambda s: s.keys["acme:admin2"]), "SELF_APPROVAL"
    ),
    SelfApproval("admin-key-then-admin-jwt", lambda s: s.keys["acme:admin"], _now(_alice_jwt), "SELF_APPROVAL"),
    SelfApproval("admin-jwt-then-admin-key", _alice_jwt, _now(lambda s: s.keys["acme:admin"]), "SELF_APPROVAL"),
    SelfApproval("same-user-second-jwt", _alice_jwt, _now(_alice_jwt), "SELF_APPROVAL"),
    SelfApproval("same-user-console-session", _alice_jwt, lambda s: _session_of(s, _alice_jwt(s)), "SELF_APPROVAL"),
    SelfApproval(
        "same-key-console-session",
        lambda s: s.keys["acme:admin"],
        lambda s: _session_of(s, s.keys["acme:admin"]),
        "SELF_APPROVAL",
    ),
    SelfApproval(
        "member-approves-own", lambda s: s.keys["acme:member"], _now(lambda s: s.keys["acme:member"]), "NOT_ADMIN"
    ),
]


@pytest.mark.parametrize("case", SELF_APPROVALS, ids=lambda c: c.id)
async def test_nobody_approves_their_own_request(stack: Stack, case: SelfApproval) -> None:
    arguments = {"amount": 13, "to": f"self-{case.id}"}
    requested = await _call(stack, case.requester(stack), "acme/tools", arguments)
    approval_id = requested["_meta"]["monomcp/approval"]["id"]
    approver = await case.approver(stack)
    async with PolicyClient(stack.policy_addr, approver) as client:
        with pytest.raises(errors.PermissionDenied) as refused:
            await client.decide_approval(approval_id, approve=True)
    assert refused.value.reason == case.reason
    rest = await stack.rest("POST", f"/api/v1/approvals/{approval_id}/approve", approver)
    assert rest.status_code == 403 and case.reason in rest.text
    before = stack.executions()
    again = await _call(stack, case.requester(stack), "acme/tools", arguments)
    assert again["isError"] and stack.executions() == before
    assert await _status(stack, approval_id) == "pending"


@pytest.mark.parametrize(
    ("requester", "approver"),
    [("acme:member", "acme:admin"), ("acme:admin", "operator"), ("alice-jwt", "operator")],
)
async def test_control_someone_else_may_approve(stack: Stack, requester: str, approver: str) -> None:
    bearer = _alice_jwt(stack) if requester == "alice-jwt" else stack.keys[requester]
    arguments = {"amount": 14, "to": f"control-{requester}"}
    approval_id = (await _call(stack, bearer, "acme/tools", arguments))["_meta"]["monomcp/approval"]["id"]
    if approver == "operator":
        await stack.operator.decide_approval(approval_id, approve=True)
    else:
        async with stack.client(approver) as admin:
            await admin.decide_approval(approval_id, approve=True)
    before = stack.executions()
    done = await _call(stack, bearer if requester != "alice-jwt" else _alice_jwt(stack), "acme/tools", arguments)
    assert not done.get("isError") and stack.executions() == before + 1
