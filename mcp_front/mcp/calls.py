"""tools/call: validate → AuthorizeToolCall → run on the backend → CompleteToolCall.

Nothing runs unless the policy service said ALLOW, and its audit row is committed
before that answer arrives. Any policy failure is a JSON-RPC error: fail closed.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from jsonschema.exceptions import best_match

from mcp_front.access import APPROVAL_STATUS_TOOL, ToolkitAccess
from mcp_front.backends.answer_budget import AnswerOverBudget
from mcp_front.backends.upstream import UpstreamError, UpstreamPool, UpstreamRpcError, UpstreamTimeout
from mcp_front.mcp import results
from mcp_front.mcp.approval_flows import ApprovalFlows
from mcp_front.mcp.completion import WITHHELD, complete_durably
from mcp_front.mcp.context import GatewayRequest, request_facts
from mcp_front.mcp.relay import ClientRelay, RelayHub, guard
from mcp_front.mcp.sdk import MCPError, types
from mcp_front.mcp.waiting import Disconnected, never_disconnected
from mcp_front.observability.metrics import FrontMetrics
from mcp_front.observability.tracing import traced
from policy_service import errors
from policy_service.client import (
    DECISION_ALLOW,
    DECISION_BLOCKED,
    DECISION_PENDING_APPROVAL,
    PolicyClient,
    PolicyUnavailable,
)
from policy_service.wire_views import approval_of, approval_view, has_approval

log = logging.getLogger("monomcp.front")

# json.dumps with separators builds an encoder per call; this one is built once (docs/adr/0040).
_compact = json.JSONEncoder(separators=(",", ":")).encode

POLICY_UNAVAILABLE = "Policy service unavailable: the call was not run. Try again shortly."
CANCELLED = "The call was cancelled by the client; the toolkit backend was told to stop."
NOT_READ = "The tool ran, but {reason}. Check the audit log (call {call_id}) before running it again."


def validation_error(access: ToolkitAccess, name: str, arguments: dict[str, Any]) -> str | None:
    entry = access.tools.get(name)
    if entry is None:
        return None
    error = best_match(entry.validator.iter_errors(arguments))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"Invalid arguments for '{name}' at {where}: {error.message}"


@dataclass(frozen=True, slots=True)
class CallFlow:
    """How this client can follow an approval beyond the plain result."""

    task_requested: bool = False  # 2025-11-25 client sent `task`: answer with a task
    task_ttl_ms: int | None = None  # the retention that client asked for
    url_elicitation: bool = False  # 2026-07-28 client can open a URL: answer input_required
    request_state: str | None = None  # 2026-07-28 retry carrying our earlier requestState
    declined: bool = False  # 2026-07-28 retry whose client declined or cancelled the approval page
    disconnected: Disconnected = field(default=never_disconnected, compare=False)  # stops server-side waits
    relay: ClientRelay | None = field(default=None, compare=False)  # what the backend sends during the call
    meta: dict[str, Any] = field(default_factory=dict, compare=False)  # the client's request _meta to forward
    # 2026-07-28 retry of a backend's own input_required round: its requestState and the answers
    backend_round: dict[str, Any] | None = field(default=None, compare=False)


PLAIN = CallFlow()


_DECISION_LABELS = {DECISION_PENDING_APPROVAL: "pending_approval", DECISION_BLOCKED: "blocked"}


class ToolCaller:
    def __init__(
        self,
        policy: PolicyClient,
        upstreams: UpstreamPool,
        public_url: str,
        flows: ApprovalFlows,
        metrics: FrontMetrics | None = None,
    ) -> None:
        self._metrics = metrics or FrontMetrics()
        self._policy = policy
        self._upstreams = upstreams
        self._public_url = public_url
        self.flows = flows
        self.relays = RelayHub()
        self._backend_levels: OrderedDict[tuple[str, str], str] = OrderedDict()  # last setLevel per session

    async def call(
        self, req: GatewayRequest, name: str, arguments: dict[str, Any], flow: CallFlow = PLAIN
    ) -> dict[str, Any]:
        try:
            if name == APPROVAL_STATUS_TOOL:
                return await self._approval_status(req, arguments)
            problem = validation_error(req.access, name, arguments)
            if problem is not None:
                result = results.text_result(problem, is_error=True)
                await self._record(req, name, arguments, result, "invalid", problem)
                return result
            if flow.request_state is not None and flow.backend_round is None:
                await self._check_request_state(req, name, arguments, flow.request_state)
            decision = await self.authorize(req, name, arguments)
            if flow.request_state is not None and decision.decision == DECISION_PENDING_APPROVAL and not flow.declined:
                if await self.flows.wait_while_pending(req.credential, decision.approval.id, flow.disconnected):
                    decision = await self.authorize(req, name, arguments)
            return await self._respond(req, name, arguments, decision, flow)
        except PolicyUnavailable as exc:
            log.warning("policy unavailable request_id=%s: %s", req.request_id, exc.message)
            raise MCPError(types.INTERNAL_ERROR, POLICY_UNAVAILABLE) from None
        except errors.Unauthenticated as exc:
            raise MCPError(types.INVALID_REQUEST, f"Unauthenticated: {exc.message}") from None
        except errors.NotFound:
            raise MCPError(types.INVALID_PARAMS, "Not found") from None
        except errors.PolicyError as exc:
            log.warning("policy error request_id=%s: %s", req.request_id, exc.message)
            raise MCPError(types.INTERNAL_ERROR, "Policy check failed: the call was not run.") from None

    def _observe(self, toolkit: str, status: str, duration_ms: float) -> None:
        org, _, slug = toolkit.partition("/")
        self._metrics.observe_tool_call(org, slug, "allow", status)
        self._metrics.upstream_seconds.observe(duration_ms / 1000)
        if status in ("timeout", "backend_error"):
            self._metrics.upstream_errors.labels(status).inc()

    @traced("monomcp.authorize")
    async def authorize(self, req: GatewayRequest, name: str, arguments: dict[str, Any]) -> Any:
        return await self._policy.authorize_tool_call(
            req.credential,
            req.org,
            req.toolkit,
            name,
            _compact(arguments),
            **request_facts(req),
        )

    async def _respond(
        self, req: GatewayRequest, name: str, arguments: dict[str, Any], decision: Any, flow: CallFlow
    ) -> dict[str, Any]:
        if decision.decision == DECISION_ALLOW:
            result = await self.execute(
                decision,
                name,
                arguments,
                toolkit=f"{req.org}/{req.toolkit}",
                relay=flow.relay,
                meta=flow.meta,
                backend_round=flow.backend_round,
            )
            if result.get("resultType") == "input_required":  # a 2026-07-28 backend asks the client
                return self.flows.wrap_backend_round(req, name, arguments, result)
            return result
        outcome = _DECISION_LABELS.get(decision.decision, "denied")
        self._metrics.observe_tool_call(req.org, req.toolkit, outcome, outcome)
        if decision.decision == DECISION_PENDING_APPROVAL:
            pending = approval_view(decision.approval)
            if flow.task_requested:
                return await self.flows.create_task(req, pending, flow.task_ttl_ms)
            if flow.url_elicitation:
                return self.flows.input_required(req, name, arguments, pending)
            return results.pending_result(pending, self._public_url)
        if decision.decision == DECISION_BLOCKED:
            if not decision.permission:
                raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {name}")
            return results.text_result(decision.message or f"Tool '{name}' is blocked.", is_error=True)
        refused = approval_of(decision)
        if refused is not None:
            if refused.status == "consumed":
                # A duplicate of a call that already ran on this approval: say so, nothing was queued.
                return results.not_run_result(decision.message, results.approval_facts(refused, self._public_url))
            return results.denied_result(refused, self._public_url, decision.message)
        return results.text_result(decision.message or "Denied.", is_error=True)

    @traced("monomcp.execute")
    async def execute(
        self,
        decision: Any,
        name: str,
        arguments: dict[str, Any],
        toolkit: str = "",
        relay: ClientRelay | None = None,
        meta: dict[str, Any] | None = None,
        backend_round: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run an allowed call. Upstream sessions are scoped to (toolkit, caller org): never shared.

        With a relay, the backend's progress, logs and requests reach the client during the
        call, and a client that leaves or cancels stops the backend (audited `cancelled`).
        The client is told what failed without the backend's address; the audit row keeps it.
        """
        backend = decision.backend
        scope = f"{toolkit}|{decision.principal.org_slug}"
        started = time.perf_counter()
        error = ""
        failure: MCPError | None = None  # raised to the client once the completion is durable
        try:
            relayed: dict[str, Any] | None = None
            if relay is None:
                result = await self._upstreams.call_tool(
                    backend.url, dict(backend.headers), name, arguments, backend.timeout_seconds or 30.0, scope, meta
                )
            else:
                relayed = await self._relayed(backend, scope, name, arguments, relay, meta or {}, backend_round)
                result = relayed if relayed is not None else results.text_result(CANCELLED, is_error=True)
            status = "tool_error" if result.get("isError") else "ok"
            if relay is not None and relayed is None:
                status, error = "cancelled", "the client cancelled the call"
        except UpstreamTimeout as exc:
            status, error = "timeout", str(exc)
            result = results.text_result(f"The toolkit backend timed out: {exc.public}", is_error=True)
        except UpstreamRpcError as exc:  # the backend's JSON-RPC error reaches the client with its code
            status, error, failure = "backend_error", str(exc), MCPError(exc.code, exc.message, exc.data)
            result = {"error": {"code": exc.code, "message": exc.message, "data": exc.data}}
        except AnswerOverBudget as exc:  # the tool ran; its answer was never read (docs/adr/0050)
            message = NOT_READ.format(reason=exc, call_id=decision.call_id)
            status, error, failure = "error", f"answer budget: {exc}", MCPError(types.INTERNAL_ERROR, message)
            result = {"error": {"code": types.INTERNAL_ERROR, "message": message}}
        except UpstreamError as exc:
            status, error = "backend_error", str(exc)
            result = results.text_result(f"The toolkit backend failed: {exc.public}", is_error=True)
        duration_ms = (time.perf_counter() - started) * 1000
        self._observe(toolkit, status, duration_ms)
        # A call that consumed an approval keeps its result for that approval's tasks (2025-11-25).
        keep = has_approval(decision)
        if not await complete_durably(self._policy, decision.call_id, status, result, error, duration_ms, keep):
            return results.text_result(WITHHELD.format(call_id=decision.call_id), is_error=True)
        if failure is not None:
            raise failure
        return result

    async def _check_request_state(
        self, req: GatewayRequest, name: str, arguments: dict[str, Any], request_state: str
    ) -> None:
        """A refused requestState runs nothing, and like every refusal it is audited."""
        try:
            self.flows.check_request_state(request_state, req, name, arguments)
        except MCPError as exc:
            error = {"error": {"code": exc.error.code, "message": exc.error.message}}
            await self._record(req, name, arguments, error, "invalid", exc.error.message)
            raise

    async def _relayed(
        self,
        backend: Any,
        scope: str,
        name: str,
        arguments: dict[str, Any],
        relay: ClientRelay,
        meta: dict[str, Any],
        backend_round: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """The backend's result, or None when the client cancelled (the backend was told)."""
        headers = dict(backend.headers)
        timeout = backend.timeout_seconds or 30.0
        if relay.backend_log_level is not None:
            await self._forward_level(backend.url, headers, scope, relay.backend_log_level, timeout)
        params: dict[str, Any] = {"name": name, "arguments": arguments, **(backend_round or {})}
        forwarded = dict(meta)
        if relay.progress_token is not None:
            forwarded["progressToken"] = relay.progress_token
        if forwarded:
            params["_meta"] = forwarded
        call = self._upstreams.relay_call(backend.url, headers, params, timeout, scope, relay, relay.modern)
        return await guard(relay, call)

    async def _forward_level(
        self, url: str, headers: dict[str, str], scope: str, level: str, timeout_seconds: float
    ) -> None:
        """The client's logging/setLevel reaches the tenant's backend session when it changes."""
        key = (scope, url)
        if self._backend_levels.get(key) == level:
            return
        message = {"jsonrpc": "2.0", "id": 0, "method": "logging/setLevel", "params": {"level": level}}
        try:
            await self._upstreams.forward(url, headers, scope, message, timeout_seconds)
        except (UpstreamError, AnswerOverBudget) as exc:  # a backend without logging still runs the call
            log.info("logging/setLevel not forwarded: %s", exc)
            return
        self._backend_levels[key] = level
        while len(self._backend_levels) > 10_000:
            self._backend_levels.popitem(last=False)

    async def _approval_status(self, req: GatewayRequest, arguments: dict[str, Any]) -> dict[str, Any]:
        approval_id = arguments.get("approval_id")
        if (
            not isinstance(approval_id, str)
            or not approval_id
            or len(approval_id) > 64
            or set(arguments) - {"approval_id"}
        ):
            result = results.text_result("approval_status takes one argument: approval_id (a string).", is_error=True)
            await self._record(req, APPROVAL_STATUS_TOOL, arguments, result, "invalid", "bad arguments")
            return result
        try:
            approval = await self._policy.get_approval_status(req.credential, approval_id)
        except errors.NotFound:
            result = results.text_result(f"No approval {approval_id} is visible to you.", is_error=True)
            await self._record(req, APPROVAL_STATUS_TOOL, arguments, result, "invalid", "approval not found")
            return result
        result = results.status_report(approval_view(approval), self._public_url)
        await self._record(req, APPROVAL_STATUS_TOOL, arguments, result, "ok", "")
        return result

    async def _record(
        self, req: GatewayRequest, tool: str, arguments: dict[str, Any], result: dict[str, Any], status: str, error: str
    ) -> None:
        await self._policy.record_request(
            req.credential,
            req.org,
            req.toolkit,
            "tools/call",
            tool=tool,
            request_json=json.dumps({"name": tool, "arguments": arguments}),
            response_json=json.dumps(result),
            status=status,
            error=error,
            **request_facts(req),
        )
