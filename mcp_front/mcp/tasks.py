"""tasks/get, tasks/result, tasks/list and tasks/cancel for tools/call tasks that wait on an
approval (2025-11-25). The 2.3.0 SDK does not dispatch task methods itself; `server.py`
registers these.

Task state lives in the policy service (docs/adr/0016-approval-tasks.md). Once the approval
is granted, the first tasks/get or tasks/result that sees it on any replica starts the call
in the background; consuming the approval is the one atomic step, so the call runs once
however many polls, tasks or replicas race. The result is kept with the task, so the task
turns `completed` (or `failed`) by itself and every replica returns the same result for the
task's lifetime. The arguments that run come from the approval, checked against its hash.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from mcp_front.backends.answer_budget import own_holding
from mcp_front.mcp import results, task_state
from mcp_front.mcp.approval_flows import UNKNOWN_TASK
from mcp_front.mcp.calls import POLICY_UNAVAILABLE, ToolCaller
from mcp_front.mcp.context import GatewayRequest
from mcp_front.mcp.sdk import MCPError, types
from mcp_front.mcp.waiting import ClientGone, Disconnected, TooManyWaiters, never_disconnected, poll_until
from policy_service import errors
from policy_service.approvals.binding import arguments_sha256, canonical_json
from policy_service.client import DECISION_ALLOW, PolicyClient
from policy_service.wire_views import ApprovalView, TaskView, approval_of, task_page, task_view

log = logging.getLogger("monomcp.front")

STILL_WAITING = "Still waiting for an admin; call tasks/result again (or poll with tasks/get)."
LIST_PAGE = 50


class TaskHandlers:
    def __init__(self, policy: PolicyClient, caller: ToolCaller, public_url: str, result_wait_seconds: float) -> None:
        self._policy = policy
        self._caller = caller
        self._public_url = public_url
        self._wait = result_wait_seconds
        self._runs: dict[str, asyncio.Task[None]] = {}  # approval id -> the run this replica started

    async def get(self, req: GatewayRequest, task_id: str) -> dict[str, Any]:
        state = await self._state(req, task_id)
        self._start_if_runnable(req, state)
        return task_state.task_object(task_id, state, self._public_url)

    async def result(
        self, req: GatewayRequest, task_id: str, disconnected: Disconnected = never_disconnected
    ) -> dict[str, Any]:
        """Waits (bounded, with backoff) until the task ends; returns what the call returned."""

        async def ended() -> TaskView | None:
            state = await self._state(req, task_id, include_result=True)
            self._start_if_runnable(req, state)
            return state if task_state.status_of(state, self._public_url).terminal else None

        try:
            with self._caller.flows.waiters.hold(req.credential):
                state = await poll_until(ended, deadline_seconds=self._wait, disconnected=disconnected)
        except TooManyWaiters as exc:
            raise MCPError(types.INVALID_REQUEST, str(exc)) from None
        except ClientGone:
            raise MCPError(types.INVALID_REQUEST, "The client disconnected; stopped waiting.") from None
        if state is None:
            raise MCPError(types.INTERNAL_ERROR, STILL_WAITING)
        return task_state.payload(task_id, state, self._public_url)

    async def list(self, req: GatewayRequest, cursor: str | None) -> dict[str, Any]:
        """The caller's own tasks on this toolkit, newest first."""
        try:
            listing = await self._policy.list_tasks(req.credential, req.org, req.toolkit, cursor or "", LIST_PAGE)
        except errors.InvalidArgument:
            raise MCPError(types.INVALID_PARAMS, "Invalid cursor") from None
        except errors.PolicyError:
            raise MCPError(types.INTERNAL_ERROR, POLICY_UNAVAILABLE) from None
        page, flows = task_page(listing), self._caller.flows
        listed = [task_state.task_object(flows.task_id(req, s), s, self._public_url) for s in page.tasks]
        return {"tasks": listed, **({"nextCursor": page.next_cursor} if page.next_cursor else {})}

    async def cancel(self, req: GatewayRequest, task_id: str) -> dict[str, Any]:
        """Withdraws the pending (or granted, unused) approval: the call never runs."""
        row_id = self._caller.flows.read_task(req, task_id)
        try:
            cancelled = await self._policy.cancel_task(req.credential, req.org, req.toolkit, row_id)
        except errors.NotFound:
            raise MCPError(types.INVALID_PARAMS, UNKNOWN_TASK) from None
        except errors.FailedPrecondition as exc:
            raise MCPError(types.INVALID_PARAMS, f"Cannot cancel task: {exc.message}") from None
        except errors.PolicyError:
            raise MCPError(types.INTERNAL_ERROR, POLICY_UNAVAILABLE) from None
        return task_state.task_object(task_id, task_view(cancelled), self._public_url)

    async def _state(self, req: GatewayRequest, task_id: str, include_result: bool = False) -> TaskView:
        row_id = self._caller.flows.read_task(req, task_id)
        try:
            return task_view(await self._policy.get_task(req.credential, req.org, req.toolkit, row_id, include_result))
        except errors.NotFound:
            raise MCPError(types.INVALID_PARAMS, UNKNOWN_TASK) from None
        except errors.PolicyError:
            raise MCPError(types.INTERNAL_ERROR, POLICY_UNAVAILABLE) from None

    # --- the run -------------------------------------------------------------------------
    def _start_if_runnable(self, req: GatewayRequest, state: TaskView) -> None:
        approval_id = state.approval.id
        if not task_state.runnable(state) or approval_id in self._runs:
            return
        run = asyncio.get_running_loop().create_task(self._run(req, state), name=f"task-run-{approval_id}")
        self._runs[approval_id] = run
        run.add_done_callback(lambda _: self._runs.pop(approval_id, None))

    async def _run(self, req: GatewayRequest, state: TaskView) -> None:
        """Authorize (consumes the approval: only one caller anywhere gets ALLOW) and run; the
        result is kept with the approval's tasks as the call completes. A refusal ends the task."""
        approval = state.approval
        try:
            arguments = _exact_arguments(approval)
            if arguments is None:
                await self._settle(req, state, "This task's arguments are no longer available; call the tool again.")
                return
            decision = await self._caller.authorize(req, approval.tool, arguments)
            if decision.decision == DECISION_ALLOW:
                with own_holding():  # this run may outlive the request that started it
                    await self._caller.execute(decision, approval.tool, arguments, toolkit=f"{req.org}/{req.toolkit}")
                return
            refused = approval_of(decision)
            if refused is not None and refused.status == "consumed":
                return  # another replica or call is running it; its result reaches the task
            await self._settle(req, state, decision.message or "Not run.")
        except Exception:  # a background run has no caller to raise to: the task shows what is known
            log.exception("task run for approval %s failed request_id=%s", approval.id, req.request_id)

    async def _settle(self, req: GatewayRequest, state: TaskView, message: str) -> None:
        refusal = results.not_run_result(message, results.approval_facts(state.approval, self._public_url))
        await self._policy.settle_task(req.credential, req.org, req.toolkit, state.task_id, json.dumps(refusal))


def _exact_arguments(approval: ApprovalView) -> dict[str, Any] | None:
    """The arguments the approval was granted for, checked against its hash (None if gone)."""
    try:
        arguments = json.loads(approval.arguments_json)
    except ValueError:
        return None
    if not isinstance(arguments, dict) or arguments_sha256(canonical_json(arguments)) != approval.arguments_sha256:
        return None
    return arguments
