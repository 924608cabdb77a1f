"""tasks/get and tasks/result for tools/call tasks whose state is an approval.

The 2.3.0 SDK does not dispatch task methods itself; `server.py` registers these.
"""

from __future__ import annotations

import asyncio
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from mcp_front.mcp import results
from mcp_front.mcp.calls import POLICY_UNAVAILABLE, ToolCaller
from mcp_front.mcp.context import GatewayRequest
from policy_service import errors
from policy_service.client import APPROVAL_STATUS_NAMES, DECISION_ALLOW, PolicyClient

RELATED_TASK = "io.modelcontextprotocol/related-task"


class TaskHandlers:
    def __init__(self, policy: PolicyClient, caller: ToolCaller, public_url: str, result_wait_seconds: float) -> None:
        self._policy = policy
        self._caller = caller
        self._public_url = public_url
        self._wait = result_wait_seconds

    async def get(self, req: GatewayRequest, task_id: str) -> dict[str, Any]:
        task = self._caller.flows.read_task(req, task_id)
        approval = await self._approval(req, task["a"])
        return self._caller.flows.task_view(task_id, approval)

    async def result(self, req: GatewayRequest, task_id: str) -> dict[str, Any]:
        """Blocks until the approval is decided; once approved, runs the tool exactly once."""
        task = self._caller.flows.read_task(req, task_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while True:
            approval = await self._approval(req, task["a"])
            status = APPROVAL_STATUS_NAMES.get(approval.status)
            if status == "approved":
                decision = await self._caller.authorize(req, task["t"], task["g"])
                if decision.decision == DECISION_ALLOW:
                    result = await self._caller.execute(decision, task["t"], task["g"], f"{req.org}/{req.toolkit}")
                    return {**result, "_meta": {RELATED_TASK: {"taskId": task_id}}}
                continue
            if status in ("denied", "expired"):
                return results.denied_result(approval, self._public_url, "")
            if status == "consumed":
                raise MCPError(types.INVALID_PARAMS, "This task's result was already delivered.")
            if loop.time() >= deadline:
                raise MCPError(types.INTERNAL_ERROR, "Still waiting for an admin; call tasks/result again.")
            await asyncio.sleep(1.0)

    async def _approval(self, req: GatewayRequest, approval_id: str) -> Any:
        try:
            return await self._policy.get_approval_status(req.credential, approval_id)
        except errors.NotFound:
            raise MCPError(types.INVALID_PARAMS, "Unknown task") from None
        except errors.PolicyError:
            raise MCPError(types.INTERNAL_ERROR, POLICY_UNAVAILABLE) from None
