"""Attack matrix: the operator token on the MCP endpoints. The operator token is for platform
operations (the admin API); on an MCP endpoint it is a caller of no org (ADR 0035): an org's
private toolkit answers it exactly the 404 a non-member gets, and a public toolkit follows the
public rules. Its approvals lookup over MCP finds nothing (it has none of its own).

Regression: the operator token could list and call any org's private toolkits over MCP
(always-allow tools ran), and read any org's approval through `approval_status`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policy_service import errors
from tests.support.attack_stack import Stack, new_request_id, rpc, tools_call

pytestmark = pytest.mark.asyncio(loop_scope="module")

BODIES: dict[str, dict[str, Any]] = {
    "tools-list": rpc("tools/list", {}),
    "tools-call": tools_call("echo", {"text": "hi"}),
    "resources-list": rpc("resources/list", {}),
    "prompts-list": rpc("prompts/list", {}),
}


@pytest.mark.parametrize("toolkit", ["/acme/tools/mcp", "/globex/gx/mcp"])
@pytest.mark.parametrize("body", list(BODIES))
async def test_a_private_toolkit_answers_the_operator_the_non_members_404(
    stack: Stack, toolkit: str, body: str
) -> None:
    outsider = "globex:member" if toolkit.startswith("/acme/") else "acme:member"
    before = stack.executions()
    request_id = new_request_id(f"operator-private-{body}")
    answer = await stack.post(toolkit, stack.settings.operator_token, BODIES[body], request_id=request_id)
    reference = await stack.post(toolkit, stack.keys[outsider], BODIES[body])
    assert reference.status_code == 404
    assert (answer.status_code, answer.content) == (reference.status_code, reference.content)
    assert stack.executions() == before
    assert all(row["status"] != "started" for row in await stack.audit_rows(request_id))


async def test_the_policy_service_hides_private_toolkits_from_the_operator_credential(stack: Stack) -> None:
    async with stack.service() as front:
        with pytest.raises(errors.NotFound):
            await front.list_tools(stack.settings.operator_token, "acme", "tools")
        with pytest.raises(errors.NotFound):
            await front.authorize_tool_call(stack.settings.operator_token, "acme", "tools", "echo", "{}")
        # A public toolkit follows the public rules: visible, always-allow tools run.
        assert (await front.list_tools(stack.settings.operator_token, "acme", "shared")).tools


async def test_a_public_toolkit_follows_the_public_rules_for_the_operator(stack: Stack) -> None:
    before = stack.executions()
    answer = await stack.post("/acme/shared/mcp", stack.settings.operator_token, tools_call("echo", {"text": "hi"}))
    assert answer.status_code == 200 and answer.json()["result"]["content"][0]["text"] == "hi"
    assert stack.executions() == before + 1


async def test_approval_status_over_mcp_shows_the_operator_no_orgs_approval(stack: Stack) -> None:
    approval_id = await stack.request_approval("acme:member", {"amount": 7, "to": "eve-operator"})
    call = tools_call("approval_status", {"approval_id": approval_id})
    answer = await stack.post("/acme/shared/mcp", stack.settings.operator_token, call)
    outsider = await stack.post("/acme/shared/mcp", stack.keys["globex:member"], call)
    assert answer.status_code == outsider.status_code == 200
    assert answer.json()["result"] == outsider.json()["result"]
    assert "eve-operator" not in json.dumps(answer.json())
    # The admin API still shows it to the operator (platform operations).
    assert (await stack.operator.get_approval(approval_id)).id == approval_id
