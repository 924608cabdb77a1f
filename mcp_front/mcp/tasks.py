"""tasks/get and tasks/result for tools/call tasks whose state is an approval.

The 2.3.0 SDK does not dispatch task methods itself; `server.py` registers these.
A task id is bound to org, toolkit and principal (see approval_flows); the arguments to
run come from the approval, which shows its requester the exact arguments while live.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from mcp_front.mcp import results
from mcp_front.mcp.approval_flows import UNKNOWN_TASK
from mcp_front.mcp.calls import POLICY_UNAVAILABLE, ToolCaller
from mcp_front.mcp.context import GatewayRequest
from mcp_front.mcp.waiting import ClientGone, Disconnected, TooManyWaiters, never_disconnected, poll_until
from policy_service import errors
from policy_service.approvals.binding import arguments_sha256, canonical_json
from policy_service.client import APPROVAL_STATUS_NAMES, DECISION_ALLOW, Approval, PolicyClient

RELATED_TASK = "io.modelcontextprotocol/related-task"
STILL_WAITING = "Still waiting for an admin; call tasks/result again (or poll with tasks/get)."


class TaskHandlers:
    def __init__(self, policy: PolicyClient, caller: ToolCaller, public_url: str, result_wait_seconds: float) -> None:
        self._policy = policy
        self._caller = caller
        self._public_url = public_url
        self._wait = result_wait_seconds

    async def get(self, req: GatewayRequest, task_id: str) -> dict[str, Any]:
        approval = await self._approval(req, self._caller.flows.read_task(req, task_id))
        return self._caller.flows.task_view(task_id, approval)

    async def result(
        self, req: GatewayRequest, task_id: str, disconnected: Disconnected = never_disconnected
    ) -> dict[str, Any]:
        """Waits (bounded, with backoff) until the approval is decided; once approved, runs it once."""
        approval_id = self._caller.flows.read_task(req, task_id)

        async def decided() -> Approval | None:
            approval = await self._approval(req, approval_id)
            return approval if APPROVAL_STATUS_NAMES.get(approval.status) != "pending" else None

        try:
            with self._caller.flows.waiters.hold(req.credential):
                approval = await poll_until(decided, deadline_seconds=self._wait, disconnected=disconnected)
        except TooManyWaiters as exc:
            raise MCPError(types.INVALID_REQUEST, str(exc)) from None
        except ClientGone:
            raise MCPError(types.INVALID_REQUEST, "The client disconnected; stopped waiting.") from None
        if approval is None:
            raise MCPError(types.INTERNAL_ERROR, STILL_WAITING)
        return await self._finish(req, task_id, approval)

    async def _finish(self, req: GatewayRequest, task_id: str, approval: Approval) -> dict[str, Any]:
        status = APPROVAL_STATUS_NAMES.get(approval.status)
        if status in ("denied", "expired"):
            return results.denied_result(approval, self._public_url, "")
        if status != "approved":
            raise MCPError(types.INVALID_PARAMS, _already_delivered(approval))
        arguments = _exact_arguments(approval)
        decision = await self._caller.authorize(req, approval.tool, arguments)
        if decision.decision != DECISION_ALLOW:
            # Any other answer ends the task: nothing ran, and waiting again would not change that.
            if decision.HasField("approval") and APPROVAL_STATUS_NAMES.get(decision.approval.status) == "consumed":
                raise MCPError(types.INVALID_PARAMS, _already_delivered(decision.approval))
            return results.text_result(decision.message or "Not run.", is_error=True)
        result = await self._caller.execute(decision, approval.tool, arguments, toolkit=f"{req.org}/{req.toolkit}")
        return {**result, "_meta": {RELATED_TASK: {"taskId": task_id}}}

    async def _approval(self, req: GatewayRequest, approval_id: str) -> Approval:
        try:
            approval = await self._policy.get_approval_status(req.credential, approval_id)
        except errors.NotFound:
            raise MCPError(types.INVALID_PARAMS, UNKNOWN_TASK) from None
        except errors.PolicyError:
            raise MCPError(types.INTERNAL_ERROR, POLICY_UNAVAILABLE) from None
        if (approval.toolkit_org_slug, approval.toolkit_slug) != (req.org, req.toolkit):
            raise MCPError(types.INVALID_PARAMS, UNKNOWN_TASK)
        return approval


def _already_delivered(approval: Approval) -> str:
    used_by = f" (used by call {approval.consumed_by_call_id})" if approval.consumed_by_call_id else ""
    return f"This task's approval was already used{used_by}; its result was delivered to that call."


def _exact_arguments(approval: Approval) -> dict[str, Any]:
    """The arguments the approval was granted for, checked against its hash."""
    try:
        arguments = json.loads(approval.arguments_json)
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict) or arguments_sha256(canonical_json(arguments)) != approval.arguments_sha256:
        raise MCPError(types.INVALID_PARAMS, "This task's arguments are no longer available; call the tool again.")
    return arguments
