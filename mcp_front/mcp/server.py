"""The MCP server behind every toolkit endpoint: one SDK low-level Server whose handlers
read the toolkit and caller from the request. With `gateway.py` and `items.py` it adapts
the SDK's Server API; every SDK name comes through `mcp_front.mcp.sdk`. Single tools/call,
tools/list and ping requests usually take the lean path (`lean.py`) instead."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mcp_front.access import ToolkitAccess, tools_page
from mcp_front.backends.negotiation import LISTEN
from mcp_front.mcp import items
from mcp_front.mcp.approval_flows import APPROVAL_INPUT
from mcp_front.mcp.audit import audit_request as audit_request  # lean.py imports it from here
from mcp_front.mcp.calls import CallFlow, ToolCaller
from mcp_front.mcp.context import current_request, from_handler_context
from mcp_front.mcp.listen import ListenHandler
from mcp_front.mcp.relay import RelayHub, relay_for
from mcp_front.mcp.sdk import (
    MODERN_PROTOCOL_VERSIONS,
    SERVER_NAME,
    SERVER_VERSION,
    CacheHint,
    CallNext,
    HandlerResult,
    MCPError,
    Server,
    ServerRequestContext,
    types,
)
from mcp_front.mcp.standalone import StreamHub
from mcp_front.mcp.tasks import TaskHandlers
from mcp_front.mcp.versions import SERVED_VERSIONS, TASKS_SINCE, initialize_version, negotiated_at_initialize
from mcp_front.mcp.waiting import Disconnected, never_disconnected
from policy_service import errors
from policy_service.client import PolicyClient

# Permissions can change at any moment: clients must not reuse a tools/list result.
TOOLS_LIST_HINT = CacheHint(ttl_ms=0, scope="private")
INSTRUCTIONS = (
    "Tools served through the MonoMCP gateway. Some tools need an admin's approval: such a call returns an "
    "approval id; follow it with the approval_status tool and call again with the same arguments once approved."
)


class AuditMiddleware:
    """Records every MCP request except tools/call (which the call path audits itself)."""

    def __init__(self, policy: PolicyClient) -> None:
        self._policy = policy

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is None or ctx.method == "tools/call" or ctx.method in items.SELF_AUDITED | {LISTEN}:
            return await call_next(ctx)
        started = time.perf_counter()
        status, error, result = "ok", "", None
        try:
            result = await call_next(ctx)
            return result
        except MCPError as exc:
            status, error = "error", exc.message
            raise
        finally:
            await self._record(ctx, result, status, error, (time.perf_counter() - started) * 1000)

    async def _record(
        self, ctx: ServerRequestContext[Any, Any], result: Any, status: str, error: str, duration_ms: float
    ) -> None:
        try:
            req = from_handler_context(ctx)
        except RuntimeError:
            return
        if hasattr(result, "model_dump"):
            result = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        params = dict(ctx.params or {})
        await audit_request(
            self._policy, req, ctx.method, params, result, status, error, duration_ms, ctx.protocol_version
        )


def _input_schema(name: str) -> Mapping[str, Any] | None:
    req = current_request.get()
    return req.access.input_schema(name) if req is not None else None


def _complete(ctx: ServerRequestContext[Any], result: dict[str, Any]) -> dict[str, Any]:
    """2026-07-28 results must name their type; older eras must not carry it."""
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return {"resultType": "complete", **result}
    return result


def _disconnected(ctx: ServerRequestContext[Any, Any]) -> Disconnected:
    """A probe for the HTTP client having gone away, so long waits stop with it."""
    probe = getattr(getattr(ctx, "request", None), "is_disconnected", None)
    return probe if probe is not None else never_disconnected


# Request _meta keys the gateway answers itself or that belong to this hop only.
_HOP_META_PREFIXES = ("io.modelcontextprotocol/", "monomcp/")
_HOP_META_KEYS = frozenset({"progressToken", "progress_token"})


def forwardable_meta(meta: Any) -> dict[str, Any]:
    """The client's request `_meta` that reaches the backend: everything but the progress
    token (relayed separately) and protocol or gateway keys of this hop."""
    if not meta:
        return {}
    return {
        k: v for k, v in dict(meta).items() if k not in _HOP_META_KEYS and not str(k).startswith(_HOP_META_PREFIXES)
    }


def _flow(
    ctx: ServerRequestContext[Any], params: types.CallToolRequestParams, hub: RelayHub, caller: ToolCaller
) -> CallFlow:
    return replace(_follow(ctx, params, hub, caller), meta=forwardable_meta(params.meta))


def _follow(
    ctx: ServerRequestContext[Any], params: types.CallToolRequestParams, hub: RelayHub, caller: ToolCaller
) -> CallFlow:
    req = from_handler_context(ctx)
    modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
    relay = relay_for(ctx, req.credential, f"{req.org}/{req.toolkit}", hub, modern)
    if modern:
        if params.request_state is not None:
            arguments = dict(params.arguments or {})
            round_ = caller.flows.backend_round(
                params.request_state, req, params.name, arguments, params.input_responses
            )
            if round_ is not None:  # the retry of the backend's own input_required round
                return CallFlow(request_state=params.request_state, relay=relay, backend_round=round_)
        caps = ctx.session.client_capabilities
        url_ok = bool(caps and caps.elicitation and caps.elicitation.url is not None)
        if params.request_state is not None and _declined(params):
            # The user declined or dismissed the approval page: answer at once with the plain
            # pending result (its approval id), instead of waiting and asking again.
            return CallFlow(request_state=params.request_state, declined=True, relay=relay)
        return CallFlow(
            url_elicitation=url_ok, request_state=params.request_state, disconnected=_disconnected(ctx), relay=relay
        )
    return CallFlow(relay=relay)


def _declined(params: types.CallToolRequestParams) -> bool:
    answer = (params.input_responses or {}).get(APPROVAL_INPUT)
    return getattr(answer, "action", None) in ("decline", "cancel")


class TaskCallMiddleware:
    """Answers a tools/call that asks for a task. The SDK would validate the handler's
    result as a CallToolResult, so the task-creating path short-circuits here instead."""

    def __init__(self, caller: ToolCaller) -> None:
        self._caller = caller

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        params = ctx.params
        if (
            ctx.method != "tools/call"
            or not params
            or params.get("task") is None
            or ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        ):
            return await call_next(ctx)
        try:
            typed = types.CallToolRequestParams.model_validate(params, by_name=False)
        except ValueError:
            raise MCPError(types.INVALID_PARAMS, "Invalid tools/call parameters") from None
        req = from_handler_context(ctx)
        if not _supports_tasks(req.access, typed.name):
            raise MCPError(types.METHOD_NOT_FOUND, f"Tool '{typed.name}' does not support task-augmented calls")
        flow = CallFlow(task_requested=True, task_ttl_ms=typed.task.ttl if typed.task else None)
        return await self._caller.call(req, typed.name, dict(typed.arguments or {}), flow)


def _supports_tasks(access: ToolkitAccess, name: str) -> bool:
    entry = access.tools.get(name)
    support = (entry.wire.get("execution") or {}).get("taskSupport") if entry else None
    return support in ("optional", "required")


class GatewayServer(Server[Any]):
    """Advertises tools/call tasks to 2025-11-25 clients (the approval is the task); older
    versions have no tasks and 2026-07-28 waits for approvals with input_required instead."""

    def get_capabilities(self, *args: Any, protocol_version: str | None = None, **kwargs: Any) -> Any:
        capabilities = super().get_capabilities(*args, protocol_version=protocol_version, **kwargs)
        version = protocol_version or negotiated_at_initialize(initialize_version.get())
        if version == TASKS_SINCE:
            capabilities.tasks = types.ServerTasksCapability(
                list=types.TasksListCapability(),
                cancel=types.TasksCancelCapability(),
                requests=types.ServerTasksRequestsCapability(tools=types.TasksToolsCapability(call={})),
            )
        return capabilities


def build_server(caller: ToolCaller, tasks: TaskHandlers, policy: PolicyClient, streams: StreamHub) -> Server[Any]:
    async def list_tools(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> Any:
        req, cursor = from_handler_context(ctx), params.cursor if params is not None else None
        try:
            page = await tools_page(policy, req.access, req.credential, req.org, req.toolkit, cursor)
        except errors.InvalidArgument:
            raise MCPError(types.INVALID_PARAMS, "Invalid cursor") from None
        return _complete(ctx, page)

    async def discover(ctx: ServerRequestContext[Any], params: types.RequestParams | None) -> Any:
        return types.DiscoverResult(
            supported_versions=list(SERVED_VERSIONS),
            capabilities=server.get_capabilities(protocol_version=ctx.protocol_version),
            instructions=INSTRUCTIONS,
        )

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
        req = from_handler_context(ctx)
        result = await caller.call(
            req, params.name, dict(params.arguments or {}), _flow(ctx, params, caller.relays, caller)
        )
        return _complete(ctx, result)

    async def set_logging_level(ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams) -> Any:
        """Initialize era: the level applies to this credential's later calls on this toolkit, and
        reaches the backend before the next one (docs/adr/0011-relaying-streams.md)."""
        req = from_handler_context(ctx)
        caller.relays.set_level(req.credential, f"{req.org}/{req.toolkit}", params.level)
        return types.EmptyResult()

    async def get_task(ctx: ServerRequestContext[Any], params: types.GetTaskRequestParams) -> Any:
        return await tasks.get(from_handler_context(ctx), params.task_id)

    async def task_result(ctx: ServerRequestContext[Any], params: types.GetTaskPayloadRequestParams) -> Any:
        return await tasks.result(from_handler_context(ctx), params.task_id, _disconnected(ctx))

    async def list_tasks(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> Any:
        return await tasks.list(from_handler_context(ctx), params.cursor if params else None)

    async def cancel_task(ctx: ServerRequestContext[Any], params: types.CancelTaskRequestParams) -> Any:
        return await tasks.cancel(from_handler_context(ctx), params.task_id)

    server: Server[Any] = GatewayServer(
        SERVER_NAME,
        version=SERVER_VERSION,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        get_tool_input_schema=_input_schema,
        cache_hints={"tools/list": TOOLS_LIST_HINT},
    )
    server.add_request_handler("server/discover", types.RequestParams, discover)
    server.add_request_handler("tasks/get", types.GetTaskRequestParams, get_task)
    server.add_request_handler("tasks/result", types.GetTaskPayloadRequestParams, task_result)
    server.add_request_handler("tasks/list", types.PaginatedRequestParams, list_tasks)
    server.add_request_handler("tasks/cancel", types.CancelTaskRequestParams, cancel_task)
    # Resources, templates, prompts, completion: same pool, so per-tenant sessions and egress apply.
    item_handlers = items.register(server, policy, caller._upstreams, streams)
    server.add_request_handler(
        "subscriptions/listen", types.SubscriptionsListenRequestParams, ListenHandler(policy, item_handlers, streams)
    )
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_logging_level)
    # Our audit layer replaces the SDK's default OpenTelemetry middleware on the hot path.
    server.middleware = [AuditMiddleware(policy), items.ItemAuditMiddleware(policy), TaskCallMiddleware(caller)]
    return server
