"""Protocol-native ways to wait for an approval, on top of the plain result:

- 2026-07-28: an input_required result with a URL elicitation to the approval's page and a
  signed `requestState`; the client's retry runs the tool once the approval is granted.
- 2025-11-25 tasks: the task is the approval. The task id is a signed token naming the
  approval, the caller and the arguments, so any replica can answer tasks/get and
  tasks/result from the policy service's state.
"""

from __future__ import annotations

import asyncio
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from mcp_front.mcp import results
from mcp_front.mcp.context import GatewayRequest
from mcp_front.mcp.signed_state import InvalidState, StateSigner
from policy_service.approvals.binding import arguments_sha256, canonical_json
from policy_service.client import APPROVAL_STATUS_NAMES, Approval, PolicyClient

REQUEST_STATE = "request_state"
TASK = "task"
MAX_TASK_ARGUMENT_BYTES = 16_384
TASK_STATUS = {
    "pending": "working",
    "approved": "working",
    "consumed": "completed",
    "denied": "failed",
    "expired": "failed",
}


def _ttl_seconds(approval: Approval) -> float:
    import time

    return max(approval.expires_at.seconds - time.time(), 1.0) + 3600


class ApprovalFlows:
    def __init__(
        self, policy: PolicyClient, signer: StateSigner, public_url: str, wait_seconds: float, poll_seconds: float = 0.5
    ) -> None:
        self._policy = policy
        self._signer = signer
        self._public_url = public_url
        self._wait = wait_seconds
        self._poll = poll_seconds

    # --- 2026-07-28 input_required ------------------------------------------------
    def input_required(
        self, req: GatewayRequest, name: str, arguments: dict[str, Any], approval: Approval
    ) -> dict[str, Any]:
        state = self._signer.sign(
            REQUEST_STATE,
            {
                "a": approval.id,
                "p": req.access.principal_id,
                "t": name,
                "h": arguments_sha256(canonical_json(arguments)),
            },
            _ttl_seconds(approval),
        )
        url = results.approval_url(self._public_url, approval.id)
        message = (
            f"'{name}' needs an admin of {approval.org_slug} to approve it before it runs. "
            f"Open the approval page, then continue: the call runs once it is approved."
        )
        return {
            "resultType": "input_required",
            "inputRequests": {
                "approval": {"method": "elicitation/create", "params": {"mode": "url", "message": message, "url": url}}
            },
            "requestState": state,
        }

    def check_request_state(self, token: str, req: GatewayRequest, name: str, arguments: dict[str, Any]) -> None:
        """The retry must come from the same principal, for the same tool and arguments."""
        try:
            state = self._signer.verify(REQUEST_STATE, token)
        except InvalidState as exc:
            raise MCPError(types.INVALID_PARAMS, f"Invalid requestState: {exc}") from None
        if (
            state.get("p") != req.access.principal_id
            or state.get("t") != name
            or state.get("h") != arguments_sha256(canonical_json(arguments))
        ):
            raise MCPError(types.INVALID_PARAMS, "Invalid requestState: it belongs to another call")

    async def wait_while_pending(self, credential: str, approval_id: str) -> bool:
        """True once the approval leaves `pending` within the wait window."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while loop.time() < deadline:
            await asyncio.sleep(self._poll)
            approval = await self._policy.get_approval_status(credential, approval_id)
            if APPROVAL_STATUS_NAMES.get(approval.status) != "pending":
                return True
        return False

    # --- 2025-11-25 tasks -------------------------------------------------------------
    def task_id(self, req: GatewayRequest, name: str, arguments: dict[str, Any], approval: Approval) -> str:
        payload = {"a": approval.id, "p": req.access.principal_id, "t": name, "g": arguments}
        return self._signer.sign(TASK, payload, _ttl_seconds(approval))

    def read_task(self, req: GatewayRequest, task_id: str) -> dict[str, Any]:
        try:
            task = self._signer.verify(TASK, task_id)
        except InvalidState:
            raise MCPError(types.INVALID_PARAMS, "Unknown task") from None
        if task.get("p") != req.access.principal_id:
            raise MCPError(types.INVALID_PARAMS, "Unknown task")
        return task

    def create_task(
        self, req: GatewayRequest, name: str, arguments: dict[str, Any], approval: Approval
    ) -> dict[str, Any]:
        if len(canonical_json(arguments)) > MAX_TASK_ARGUMENT_BYTES:
            return results.pending_result(approval, self._public_url)
        return {"task": self.task_view(self.task_id(req, name, arguments, approval), approval)}

    def task_view(self, task_id: str, approval: Approval) -> dict[str, Any]:
        status = APPROVAL_STATUS_NAMES.get(approval.status, "pending")
        url = results.approval_url(self._public_url, approval.id)
        message = {
            "pending": f"Waiting for an admin to approve {approval.tool}: {url}",
            "approved": f"Approved by {approval.decided_by}; running {approval.tool}.",
            "consumed": "Completed.",
            "denied": f"Denied by {approval.decided_by}: {approval.reason}",
            "expired": "The approval request expired before an admin decided.",
        }[status]
        created = approval.created_at.ToJsonString()
        updated = approval.decided_at.ToJsonString() if approval.HasField("decided_at") else created
        return {
            "taskId": task_id,
            "status": TASK_STATUS[status],
            "statusMessage": message,
            "createdAt": created,
            "lastUpdatedAt": updated,
            "ttl": int(_ttl_seconds(approval) * 1000),
            "pollInterval": 2000,
        }
