"""Resources, resource templates, prompts and completion through the gateway.

Lists come from the policy service's ListItems (what this caller may see, blocked items
left out). Every read, get and completion is decided by AuthorizeItem, which writes the
audit row naming the item before it answers; the request then runs on the toolkit's
backend in the tenant's own upstream session, under the same egress policy as tool calls,
and its outcome is appended with CompleteToolCall. Unknown and blocked items are refused
with the same error; see docs/adr/0013-resources-and-prompts.md.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from mcp_front.backends.answer_budget import AnswerOverBudget
from mcp_front.backends.negotiation import client_modern
from mcp_front.backends.upstream import UpstreamError, UpstreamPool, UpstreamTimeout
from mcp_front.mcp.context import Caller, GatewayRequest, from_handler_context, request_facts
from mcp_front.mcp.sdk import (
    MODERN_PROTOCOL_VERSIONS,
    CacheHint,
    CallNext,
    HandlerResult,
    MCPError,
    Server,
    ServerRequestContext,
    types,
    validate_cache_hints,
)
from mcp_front.mcp.standalone import StreamHub
from policy_service import errors
from policy_service.client import DECISION_ALLOW, Permission, PolicyClient, PolicyUnavailable, permission_of

log = logging.getLogger("monomcp.front")

# Methods whose audit row AuthorizeItem writes (the front's generic audit skips them).
SELF_AUDITED = frozenset(
    {"resources/read", "resources/subscribe", "resources/unsubscribe", "prompts/get", "completion/complete"}
)
RESOURCE_NOT_FOUND_2025 = -32002  # the initialize era's code; 2026-07-28 retired it for -32602
POLICY_UNAVAILABLE = "Policy service unavailable: the request was not run. Try again shortly."
# Cacheable on 2026-07-28; the answer depends on the caller's permissions, so never reused.
_UNCACHED = ("resources/list", "resources/templates/list", "prompts/list", "resources/read")
# Set by the gateway's cache hints, never by a backend (whose "public" would span callers).
_GATEWAY_KEYS = frozenset({"resultType", "ttlMs", "cacheScope"})
_LIST_KEYS = {"resource": "resources", "resource_template": "resourceTemplates", "prompt": "prompts"}

# Set once AuthorizeItem has written this request's audit row.
_authorized: ContextVar[bool] = ContextVar("monomcp_item_authorized", default=False)


def _shaped(ctx: ServerRequestContext[Any], result: dict[str, Any]) -> dict[str, Any]:
    """2026-07-28 results name their type; older eras must not carry it, whatever the backend sent."""
    body = {k: v for k, v in result.items() if k not in _GATEWAY_KEYS}
    return {"resultType": "complete", **body} if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS else body


def _not_found(ctx: ServerRequestContext[Any], kind: str, message: str, name: str) -> MCPError:
    if kind == "resource" and ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return MCPError(RESOURCE_NOT_FOUND_2025, message, {"uri": name})
    return MCPError(types.INVALID_PARAMS, message)


def _forwarded(params: types.RequestParams) -> dict[str, Any]:
    """The client's params for the backend; a progress token is ours to keep (no relay here)."""
    body = params.model_dump(mode="json", by_alias=True, exclude_none=True)
    meta = {k: v for k, v in (body.pop("_meta", None) or {}).items() if k != "progressToken"}
    return body | ({"_meta": meta} if meta else {})


class ItemHandlers:
    def __init__(self, policy: PolicyClient, upstreams: UpstreamPool) -> None:
        self._policy = policy
        self._upstreams = upstreams

    async def listed(
        self, ctx: ServerRequestContext[Any], kind: str, params: types.PaginatedRequestParams | None
    ) -> Any:
        if params is not None and params.cursor is not None:
            raise MCPError(types.INVALID_PARAMS, "Invalid cursor: this list has a single page")
        req = from_handler_context(ctx)
        try:
            response = await self._policy.list_items(req.credential, req.org, req.toolkit, kind)
        except errors.PolicyError as exc:
            raise _policy_error(req, exc) from None
        items = []
        for item in response.items:
            try:
                items.append(json.loads(item.spec_json))
            except ValueError:
                continue  # a stored definition that is not JSON is never sent
        return _shaped(ctx, {_LIST_KEYS[kind]: items})

    async def run(
        self,
        ctx: ServerRequestContext[Any],
        kind: str,
        name: str,
        method: str,
        params: types.RequestParams,
        before: Callable[[str], bool] | None = None,
        after: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Authorize (audited), run on the backend, append the outcome; refusals are JSON-RPC errors.

        For subscriptions: `before` is told the tenant scope once the request is allowed and says
        whether the backend must hear of it (an unsubscribe others still need does not);
        `after` is told it once the backend accepted the request."""
        req = from_handler_context(ctx)
        forwarded = _forwarded(params)
        try:
            decision = await self._policy.authorize_item(
                req.credential,
                req.org,
                req.toolkit,
                kind,
                name,
                method,
                json.dumps(forwarded, separators=(",", ":")),
                **request_facts(req, ctx.protocol_version or req.protocol_version),
            )
        except errors.PolicyError as exc:
            raise _policy_error(req, exc) from None
        _authorized.set(True)
        if decision.decision != DECISION_ALLOW:
            if permission_of(decision.permission) is Permission.NEEDS_APPROVAL:
                raise MCPError(types.INVALID_REQUEST, decision.message)
            raise _not_found(ctx, kind, decision.message, name)
        scope = tenant_scope(req, decision)
        backend_needed = before(scope) if before is not None else True
        result = await self._execute(ctx, decision, scope, method, forwarded, backend_needed)
        if after is not None:
            after(scope)
        return result

    async def _execute(
        self,
        ctx: ServerRequestContext[Any],
        decision: Any,
        scope: str,
        method: str,
        params: dict[str, Any],
        backend_needed: bool = True,
    ) -> dict[str, Any]:
        backend = decision.backend
        started = time.perf_counter()
        failure: MCPError | None = None
        result: dict[str, Any] = {}
        status, error = "ok", ""
        try:
            message = (
                await self._upstreams.request(
                    backend.url,
                    dict(backend.headers),
                    method,
                    params,
                    backend.timeout_seconds or 30.0,
                    scope,
                    client_modern(ctx.protocol_version, method),
                )
                if backend_needed
                else {"result": {}}
            )
            if "error" in message:
                failure, status, error = _backend_error(method, message["error"])
            elif isinstance(message.get("result"), dict):
                result = message["result"]
            else:
                failure, status, error = _backend_error(method, {"message": "answered without a result"})
        except AnswerOverBudget as exc:  # the backend answered; its answer was never read (ADR 50)
            status, error = "error", f"answer budget: {exc}"
            failure = MCPError(types.INTERNAL_ERROR, f"The backend answered, but {exc}.")
        except UpstreamTimeout as exc:
            status, error = "timeout", str(exc)
            failure = MCPError(types.INTERNAL_ERROR, f"The toolkit backend timed out: {exc.public}")
        except UpstreamError as exc:
            status, error = "backend_error", str(exc)
            failure = MCPError(types.INTERNAL_ERROR, f"The toolkit backend failed: {exc.public}")
        if failure is not None and method == "completion/complete" and failure.error.code == types.METHOD_NOT_FOUND:
            # A backend without completion support offers no suggestions: that is an empty answer.
            failure, status, error, result = None, "ok", "", {"completion": {"values": [], "hasMore": False}}
        outcome = failure.error.model_dump(mode="json", exclude_none=True) if failure else result
        try:
            await self._policy.complete_tool_call(
                decision.call_id,
                status,
                json.dumps(outcome, separators=(",", ":")),
                error,
                (time.perf_counter() - started) * 1000,
            )
        except errors.PolicyError as exc:
            # The row stays `started`; the client must not get an answer the log does not hold.
            log.error("complete failed call_id=%s: %s", decision.call_id, exc.message)
            raise MCPError(types.INTERNAL_ERROR, POLICY_UNAVAILABLE) from None
        if failure is not None:
            raise failure
        return _shaped(ctx, result)


def tenant_scope(req: Caller, decision: Any) -> str:
    """The scope upstream sessions are keyed by: toolkit and caller org (never shared across orgs)."""
    return f"{req.org}/{req.toolkit}|{decision.principal.org_slug}"


def _backend_error(method: str, error: Any) -> tuple[MCPError, str, str]:
    """The backend's JSON-RPC error keeps its code and message for the client."""
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else types.INTERNAL_ERROR
    message = str(error.get("message") or f"{method} failed on the toolkit backend")[:2000]
    return MCPError(code, message, error.get("data")), "backend_error", f"backend error {code}: {message}"


def _policy_error(req: GatewayRequest, exc: errors.PolicyError) -> MCPError:
    if isinstance(exc, errors.Unauthenticated):
        return MCPError(types.INVALID_REQUEST, f"Unauthenticated: {exc.message}")
    if isinstance(exc, errors.NotFound):
        return MCPError(types.INVALID_PARAMS, "Not found")
    level = logging.WARNING if isinstance(exc, PolicyUnavailable) else logging.ERROR
    log.log(level, "policy error request_id=%s: %s", req.request_id, exc.message)
    return MCPError(types.INTERNAL_ERROR, POLICY_UNAVAILABLE)


class ItemAuditMiddleware:
    """Audits a read/get/completion that failed before AuthorizeItem wrote its row (bad params)."""

    def __init__(self, policy: PolicyClient) -> None:
        self._policy = policy

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is None or ctx.method not in SELF_AUDITED:
            return await call_next(ctx)
        token = _authorized.set(False)
        try:
            return await call_next(ctx)
        except MCPError as exc:
            if not _authorized.get():
                await self._record(ctx, exc.error.message)
            raise
        finally:
            _authorized.reset(token)

    async def _record(self, ctx: ServerRequestContext[Any, Any], error: str) -> None:
        try:
            req = from_handler_context(ctx)
            await self._policy.record_request(
                req.credential,
                req.org,
                req.toolkit,
                ctx.method,
                request_json=json.dumps({"method": ctx.method, "params": dict(ctx.params or {})}, default=str),
                status="invalid",
                error=error,
                **request_facts(req, ctx.protocol_version),
            )
        except (RuntimeError, errors.PolicyError) as exc:
            log.error("audit of %s failed: %s", ctx.method, exc)
            raise MCPError(types.INTERNAL_ERROR, POLICY_UNAVAILABLE) from None


def register(server: Server[Any], policy: PolicyClient, upstreams: UpstreamPool, streams: StreamHub) -> ItemHandlers:
    """Serve resources, resource templates, subscriptions, prompts and completion on `server`.

    A subscription is decided exactly as a read of its URI; updates reach the subscriber's
    standalone stream (`standalone.py`, docs/adr/0025-standalone-streams-and-subscriptions.md).
    """
    items = ItemHandlers(policy, upstreams)
    no_reuse = CacheHint(ttl_ms=0, scope="private")
    server.cache_hints.update(validate_cache_hints({m: no_reuse for m in _UNCACHED}))

    async def list_resources(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> Any:
        return await items.listed(ctx, "resource", params)

    async def list_templates(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> Any:
        return await items.listed(ctx, "resource_template", params)

    async def read_resource(ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams) -> Any:
        return await items.run(ctx, "resource", str(params.uri), "resources/read", params)

    async def subscribe(ctx: ServerRequestContext[Any], params: types.SubscribeRequestParams) -> Any:
        uri, owner = str(params.uri), from_handler_context(ctx).credential
        if not streams.may_subscribe(owner):
            raise MCPError(types.INVALID_REQUEST, "Too many resource subscriptions for this credential")

        def remember(scope: str) -> None:
            streams.subscribe(owner, scope, uri)

        await items.run(ctx, "resource", uri, "resources/subscribe", params, after=remember)
        return _shaped(ctx, {})

    async def unsubscribe(ctx: ServerRequestContext[Any], params: types.UnsubscribeRequestParams) -> Any:
        uri, owner = str(params.uri), from_handler_context(ctx).credential

        def forget(scope: str) -> bool:
            return streams.unsubscribe(owner, scope, uri)  # the backend hears it when nobody else needs it

        await items.run(ctx, "resource", uri, "resources/unsubscribe", params, before=forget)
        return _shaped(ctx, {})

    async def list_prompts(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> Any:
        return await items.listed(ctx, "prompt", params)

    async def get_prompt(ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams) -> Any:
        return await items.run(ctx, "prompt", params.name, "prompts/get", params)

    async def complete(ctx: ServerRequestContext[Any], params: types.CompleteRequestParams) -> Any:
        ref = params.ref
        kind, name = ("prompt", ref.name) if isinstance(ref, types.PromptReference) else ("resource_template", ref.uri)
        return await items.run(ctx, kind, name, "completion/complete", params)

    server.add_request_handler("resources/list", types.PaginatedRequestParams, list_resources)
    server.add_request_handler("resources/templates/list", types.PaginatedRequestParams, list_templates)
    server.add_request_handler("resources/read", types.ReadResourceRequestParams, read_resource)
    server.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
    server.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)
    server.add_request_handler("prompts/list", types.PaginatedRequestParams, list_prompts)
    server.add_request_handler("prompts/get", types.GetPromptRequestParams, get_prompt)
    server.add_request_handler("completion/complete", types.CompleteRequestParams, complete)
    return items
