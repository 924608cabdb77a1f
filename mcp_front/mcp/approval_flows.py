"""Protocol-native ways to wait for an approval, on top of the plain result:

- 2026-07-28: an input_required result with a URL elicitation to the approval's page and a
  signed `requestState`; the client's retry runs the tool once the approval is granted.
- 2025-11-25 tasks: the task is the approval. The task id is opaque: the approval id and
  a MAC binding it to org, toolkit and principal (no arguments). Any replica answers
  tasks/get and tasks/result from the policy service's state; the arguments to run come
  from the approval itself.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from mcp_front.mcp import results
from mcp_front.mcp.context import GatewayRequest
from mcp_front.mcp.signed_state import BoundIds, InvalidState, StateSigner
from mcp_front.mcp.waiting import ClientGone, Disconnected, TooManyWaiters, WaiterLimit, never_disconnected, poll_until
from policy_service.approvals.binding import arguments_sha256, canonical_json
from policy_service.client import APPROVAL_STATUS_NAMES, Approval, PolicyClient

REQUEST_STATE = "request_state"
APPROVAL_INPUT = "approval"  # the key of the URL elicitation in input_required results
TASK = "task"
DEFAULT_WAITERS_PER_CREDENTIAL = 8
UNKNOWN_TASK = "Unknown task"
TASK_STATUS = {
    "pending": "working",
    "approved": "working",
    "consumed": "completed",
    "denied": "failed",
    "expired": "failed",
}


def _ttl_seconds(approval: Approval) -> float:
    return max(approval.expires_at.seconds - time.time(), 1.0) + 3600


class ApprovalFlows:
    def __init__(
        self,
        policy: PolicyClient,
        signer: StateSigner,
        public_url: str,
        wait_seconds: float,
        poll_seconds: float = 0.5,
        waiters_per_credential: int = DEFAULT_WAITERS_PER_CREDENTIAL,
    ) -> None:
        self._policy = policy
        self._signer = signer
        self._tasks = BoundIds(signer, TASK)
        self._public_url = public_url
        self._wait = wait_seconds
        self._poll = poll_seconds
        self.waiters = WaiterLimit(waiters_per_credential)

    # --- 2026-07-28 input_required ------------------------------------------------
    def input_required(
        self, req: GatewayRequest, name: str, arguments: dict[str, Any], approval: Approval
    ) -> dict[str, Any]:
        state = self._signer.sign(
            REQUEST_STATE,
            {
                "a": approval.id,
                "o": req.org,
                "tk": req.toolkit,
                "p": req.access.principal_id,
                "t": name,
                "h": arguments_sha256(canonical_json(arguments)),
            },
            _ttl_seconds(approval),
        )
        url = results.approval_url(self._public_url, approval.id)
        message = (
            f"'{name}' needs an admin of {approval.org_slug} to approve it before it runs. "
            f"Open the approval page, then continue: the call runs once it is approved. "
            f"{results.where_sent(approval)}"
        )
        return {
            "resultType": "input_required",
            "inputRequests": {
                APPROVAL_INPUT: {
                    "method": "elicitation/create",
                    "params": {"mode": "url", "message": message, "url": url},
                }
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
            or state.get("o") != req.org
            or state.get("tk") != req.toolkit
            or state.get("t") != name
            or state.get("h") != arguments_sha256(canonical_json(arguments))
        ):
            raise MCPError(types.INVALID_PARAMS, "Invalid requestState: it belongs to another call")

    async def wait_while_pending(
        self, credential: str, approval_id: str, disconnected: Disconnected = never_disconnected
    ) -> bool:
        """True once the approval leaves `pending` within the wait window (with backoff).

        Stops with an MCP error when the client has left or holds too many waits already."""

        async def decided() -> bool | None:
            approval = await self._policy.get_approval_status(credential, approval_id)
            return True if APPROVAL_STATUS_NAMES.get(approval.status) != "pending" else None

        try:
            with self.waiters.hold(credential):
                await asyncio.sleep(self._poll)
                return bool(await poll_until(decided, deadline_seconds=self._wait, disconnected=disconnected))
        except TooManyWaiters as exc:
            raise MCPError(types.INVALID_REQUEST, str(exc)) from None
        except ClientGone:
            raise MCPError(types.INVALID_REQUEST, "The client disconnected; stopped waiting.") from None

    # --- 2025-11-25 tasks -------------------------------------------------------------
    def _task_binding(self, req: GatewayRequest) -> tuple[str, str, str]:
        return (req.org, req.toolkit, req.access.principal_id)

    def task_id(self, req: GatewayRequest, approval: Approval) -> str:
        return self._tasks.issue(approval.id, self._task_binding(req), _ttl_seconds(approval))

    def read_task(self, req: GatewayRequest, task_id: str) -> str:
        """The approval id of a task issued to this principal on this org's toolkit.

        Anything else (forged, expired, another principal, org or toolkit) is the same
        error as an unknown task."""
        try:
            return self._tasks.subject(task_id, self._task_binding(req))
        except InvalidState:
            raise MCPError(types.INVALID_PARAMS, UNKNOWN_TASK) from None

    def create_task(self, req: GatewayRequest, approval: Approval) -> dict[str, Any]:
        return {"task": self.task_view(self.task_id(req, approval), approval)}

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
