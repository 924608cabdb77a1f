"""Protocol-native ways to wait for an approval, on top of the plain result:

- 2026-07-28: an input_required result with a URL elicitation to the approval's page and a
  signed `requestState`; the client's retry runs the tool once the approval is granted.
- 2025-11-25 tasks: one task per task-augmented request, waiting on the approval (several
  tasks may share one approval, which still runs once). The task id is opaque: the task's
  row id and a MAC binding it to org, toolkit and principal (no arguments). Task state and
  the kept result live in the policy service, so any replica answers tasks/* (see tasks.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mcp_front.mcp import results, task_state
from mcp_front.mcp.context import GatewayRequest
from mcp_front.mcp.sdk import MCPError, types
from mcp_front.mcp.signed_state import BoundIds, InvalidState, StateSigner
from mcp_front.mcp.waiting import ClientGone, Disconnected, TooManyWaiters, WaiterLimit, never_disconnected, poll_until
from policy_service.approvals.binding import arguments_sha256, canonical_json
from policy_service.client import PolicyClient
from policy_service.wire_views import ApprovalView, TaskView, approval_view, task_view

REQUEST_STATE = "request_state"
BACKEND_STATE = "backend_state"  # a 2026-07-28 backend's own input_required round, wrapped
BACKEND_ROUND_SECONDS = 600.0
MAX_TASK_TTL_MS = 2**62  # what a client may ask for fits the wire; the policy service clamps it
APPROVAL_INPUT = "approval"  # the key of the URL elicitation in input_required results
TASK = "task"
DEFAULT_WAITERS_PER_CREDENTIAL = 8
UNKNOWN_TASK = "Unknown task"


def _ttl_seconds(approval: ApprovalView) -> float:
    return max(approval.expires_unix - time.time(), 1.0) + 3600


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
        self, req: GatewayRequest, name: str, arguments: dict[str, Any], approval: ApprovalView
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

    # --- 2026-07-28 input_required from the backend ---------------------------------
    def _round_binding(self, req: GatewayRequest, name: str, arguments: dict[str, Any]) -> dict[str, str]:
        h = arguments_sha256(canonical_json(arguments))
        return {"o": req.org, "tk": req.toolkit, "p": req.access.principal_id, "t": name, "h": h}

    def wrap_backend_round(
        self, req: GatewayRequest, name: str, arguments: dict[str, Any], result: dict[str, Any]
    ) -> dict[str, Any]:
        """The backend's input_required result for the client, its `requestState` sealed in ours:
        bound to principal, toolkit, tool and arguments, so any replica can resume it and no
        one else can."""
        payload = {**self._round_binding(req, name, arguments), "s": result.get("requestState")}
        return {**result, "requestState": self._signer.sign(BACKEND_STATE, payload, BACKEND_ROUND_SECONDS)}

    def backend_round(
        self, token: str, req: GatewayRequest, name: str, arguments: dict[str, Any], input_responses: Any
    ) -> dict[str, Any] | None:
        """What the retry of a backend's input_required round sends the backend (its own
        `requestState` and the client's `inputResponses`); None when `token` is not such a
        round for this call (the approval path then refuses or accepts it, audited)."""
        try:
            state = self._signer.verify(BACKEND_STATE, token)
        except InvalidState:
            return None
        if any(state.get(k) != v for k, v in self._round_binding(req, name, arguments).items()):
            return None
        forwarded: dict[str, Any] = {}
        if input_responses is not None:
            forwarded["inputResponses"] = {
                key: value.model_dump(mode="json", by_alias=True, exclude_none=True)
                if hasattr(value, "model_dump")
                else value
                for key, value in dict(input_responses).items()
            }
        if state.get("s") is not None:
            forwarded["requestState"] = state["s"]
        return forwarded

    async def wait_while_pending(
        self, credential: str, approval_id: str, disconnected: Disconnected = never_disconnected
    ) -> bool:
        """True once the approval leaves `pending` within the wait window (with backoff).

        Stops with an MCP error when the client has left or holds too many waits already."""

        async def decided() -> bool | None:
            approval = await self._policy.get_approval_status(credential, approval_id)
            return True if approval_view(approval).status != "pending" else None

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

    def task_id(self, req: GatewayRequest, state: TaskView) -> str:
        """The client's id for a task row: bound to org, toolkit and principal, valid until the
        task expires, and the same every time it is derived (tasks/list re-derives it)."""
        return self._tasks.issue_until(state.task_id, self._task_binding(req), state.expires_unix)

    def read_task(self, req: GatewayRequest, task_id: str) -> str:
        """The task row id of a task issued to this principal on this org's toolkit.

        Anything else (forged, expired, another principal, org or toolkit) is the same
        error as an unknown task."""
        try:
            return self._tasks.subject(task_id, self._task_binding(req))
        except InvalidState:
            raise MCPError(types.INVALID_PARAMS, UNKNOWN_TASK) from None

    async def create_task(self, req: GatewayRequest, approval: ApprovalView, ttl_ms: int | None) -> dict[str, Any]:
        """A new task per request (several may wait on one approval, which still runs once)."""
        created = await self._policy.create_task(
            req.credential, req.org, req.toolkit, approval.id, min(max(int(ttl_ms or 0), 0), MAX_TASK_TTL_MS)
        )
        state = task_view(created)
        facts = results.approval_facts(state.approval, self._public_url)
        return {
            "task": task_state.task_object(self.task_id(req, state), state, self._public_url),
            "_meta": {results.APPROVAL_META: facts},
        }
