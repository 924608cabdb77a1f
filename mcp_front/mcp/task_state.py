"""What a 2025-11-25 client sees of an approval task: its status, the Task object, and the
payload `tasks/result` returns. Pure functions of the policy service's TaskState, so every
replica answers alike.

Status: `working` while the approval waits or its call runs; `completed` once the kept
result's completion is durable and the tool succeeded; `failed` when the tool reported an
error, the call was refused, or the approval was denied, expired or used by another call;
`cancelled` after tasks/cancel (the spec's `failed` covers a tools/call result with
`isError`, so clients learn the outcome from the status, and tasks/result still returns it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mcp_front.mcp import results
from mcp_front.mcp.sdk import MCPError, types
from policy_service.wire_views import TaskView

RELATED_TASK = "io.modelcontextprotocol/related-task"
POLL_INTERVAL_MS = 2000
TERMINAL = frozenset({"completed", "failed", "cancelled"})
_REFUSED = "refused"
_TOO_LARGE = "too_large"


@dataclass(frozen=True, slots=True)
class Status:
    status: str  # working | completed | failed | cancelled
    message: str

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def runnable(state: TaskView) -> bool:
    """Approved and nothing kept yet: the front should run it (consuming decides who does)."""
    return state.status == "live" and not state.result_status and state.approval.status == "approved"


def status_of(state: TaskView, public_url: str) -> Status:
    approval = state.approval
    if state.status == "cancelled":
        return Status("cancelled", "Cancelled by the requester: the approval was withdrawn and the call did not run.")
    if state.result_status and (not state.result_call_id or state.consumer_status):
        return _finished(state)
    approval_status = approval.status or "pending"
    if approval_status == "pending":
        url = results.approval_url(public_url, approval.id)
        return Status("working", f"Waiting for an admin to approve {approval.tool}: {url}")
    if approval_status == "approved":
        return Status("working", f"Approved by {approval.decided_by}; running {approval.tool}.")
    if approval_status == "denied":
        return Status("failed", f"Denied by {approval.decided_by}: {approval.reason}")
    if approval_status == "expired":
        return Status("failed", "The approval expired before it was used.")
    if not state.consumer_status or state.result_status:
        return Status("working", f"Running {approval.tool}.")
    if state.consumer_status == "abandoned":
        return Status("failed", f"The call {approval.consumed_by_call_id} was abandoned: its outcome is unknown.")
    return Status("failed", f"The approval was used by call {approval.consumed_by_call_id}, which got its result.")


def _finished(state: TaskView) -> Status:
    if state.result_status == "ok":
        return Status("completed", "Completed.")
    if state.result_status == _REFUSED:
        return Status("failed", "Not run: the call was refused when it was about to run.")
    if state.result_status == _TOO_LARGE:
        return Status("failed", "The call ran, but its result was too large to keep for this task.")
    return Status("failed", f"The call ended with {state.result_status}.")


def task_object(task_id: str, state: TaskView, public_url: str) -> dict[str, Any]:
    status = status_of(state, public_url)
    return {
        "taskId": task_id,
        "status": status.status,
        "statusMessage": status.message,
        "createdAt": state.created_at,
        "lastUpdatedAt": state.last_updated_at,
        "ttl": state.ttl_ms,
        "pollInterval": POLL_INTERVAL_MS,
    }


def payload(task_id: str, state: TaskView, public_url: str) -> dict[str, Any]:
    """What tasks/result returns for a terminal task: the kept result as the call returned it
    (a backend's JSON-RPC error is raised as that error), or the gateway's not-run result."""
    related = {RELATED_TASK: {"taskId": task_id}}
    if state.result_json:
        kept: dict[str, Any] = json.loads(state.result_json)
        error = kept.get("error") if isinstance(kept.get("error"), dict) else None
        if error is not None and "content" not in kept:
            raise MCPError(
                int(error.get("code", types.INTERNAL_ERROR)), str(error.get("message", "")), error.get("data")
            )
        return {**kept, "_meta": {**(kept.get("_meta") or {}), **related}}
    approval = state.approval
    facts = results.approval_facts(approval, public_url)
    status = status_of(state, public_url)
    if approval.status in ("denied", "expired") and state.status != "cancelled":
        result = results.denied_result(approval, public_url, "")
    else:
        result = results.not_run_result(status.message, facts)
        result["_meta"][results.EXECUTED_META] = approval.status == "consumed"
    result["_meta"] = {**result["_meta"], **related}
    return result
