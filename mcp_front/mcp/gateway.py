"""Every toolkit endpoint: the edge's checks (`mcp_front.edge.checks`), then the lean path
for single tools/call, tools/list and ping requests (`lean.py`), else the SDK's stateless
JSON session manager with the caller and toolkit attached to the request."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_front.access import AccessCache, ToolkitAccess
from mcp_front.backends.answer_budget import AnswerBudget
from mcp_front.edge import responses
from mcp_front.edge.checks import EdgeChecks, EdgeParts, edge_of
from mcp_front.edge.failures import CredentialFailures
from mcp_front.edge.limits import KeyLimiter, LimitSettings, LocalLimiter
from mcp_front.edge.oauth import ResourceServer
from mcp_front.edge.refusals import RefusalRecorder
from mcp_front.edge.request import EDGE_KEY, EdgeRequest
from mcp_front.edge.responses import NOT_FOUND_BODY, jsonrpc_body, not_found
from mcp_front.edge.routing import Route, request_base_url
from mcp_front.edge.sessions import SessionIds, issuing
from mcp_front.mcp import versions
from mcp_front.mcp.calls import ToolCaller
from mcp_front.mcp.context import SCOPE_KEY, GatewayRequest, current_request
from mcp_front.mcp.lean import LeanPath
from mcp_front.mcp.relay import CHANNEL_KEY, ClientChannel, route_client_message
from mcp_front.mcp.sdk import MODERN_PROTOCOL_VERSIONS, StreamableHTTPSessionManager, TransportSecuritySettings
from mcp_front.mcp.server import build_server
from mcp_front.mcp.signed_state import StateSigner
from mcp_front.mcp.standalone import StreamHub
from mcp_front.mcp.stream_endpoint import StreamEndpoint
from mcp_front.mcp.tasks import TaskHandlers
from policy_service import errors
from policy_service.client import PolicyClient

log = logging.getLogger("monomcp.front")

__all__ = ["NOT_FOUND_BODY", "EdgeLimits", "McpGateway", "not_found"]


class EdgeLimits:
    """The edge's budgets, from Settings."""

    def __init__(
        self,
        max_body_bytes: int,
        body_timeout_seconds: float,
        limiter: KeyLimiter,
        failures: CredentialFailures | None = None,
        org_limiter: KeyLimiter | None = None,
        person_limiter: KeyLimiter | None = None,
        max_streams_per_org: int = 0,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds
        self.limiter = limiter
        self.failures = failures or CredentialFailures()
        self.org_limiter = org_limiter or LocalLimiter(LimitSettings(0, 0, 0, "organization"))
        self.person_limiter = person_limiter or LocalLimiter(LimitSettings(0, 0, 0, "account"))
        self.max_streams_per_org = max_streams_per_org

    async def close(self) -> None:
        for limiter in (self.limiter, self.person_limiter, self.org_limiter):
            await limiter.close()


class McpGateway:
    def __init__(
        self,
        policy: PolicyClient,
        access: AccessCache,
        caller: ToolCaller,
        tasks: TaskHandlers,
        security: TransportSecuritySettings,
        limits: EdgeLimits,
        answers: AnswerBudget,
        oauth: ResourceServer | None = None,
        redis_url: str = "",
        sessions: SessionIds | None = None,
    ) -> None:
        self.oauth = oauth
        self._answers = answers
        self._redis_url = redis_url  # shared by replicas: misrouted relay answers find their call
        self.recorder = RefusalRecorder(policy)
        self.limiter = limits.limiter
        self._limits = limits
        self.streams = StreamHub(caller.relays, caller._upstreams, limits.max_streams_per_org)
        self._manager = StreamableHTTPSessionManager(
            app=build_server(caller, tasks, policy, self.streams),
            json_response=True,
            stateless=True,
            # Host and Origin are checked once, by the edge's HostCheck, which also knows verified custom
            # domains; the SDK still refuses a POST that is not JSON.
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            max_request_body_size=limits.max_body_bytes,
        )
        self._relays = caller.relays
        self._access = access
        self._lean = LeanPath(caller, policy)
        # Without the shared request-state key, ids are valid on this replica only.
        self._sessions = sessions or SessionIds(StateSigner(""))
        parts = EdgeParts(
            security,
            self.recorder,
            limits.limiter,
            access,
            limits.failures,
            self._sessions,
            limits.max_body_bytes,
            limits.body_timeout_seconds,
            limits.person_limiter,
            limits.org_limiter,
            oauth,
        )
        stream = StreamEndpoint(policy, self.streams, self.recorder)
        self._checks: ASGIApp = EdgeChecks(parts, self._endpoint, stream, self._manager.handle_request)

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        try:
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(self._manager.run())
                if self._redis_url:
                    from mcp_front.mcp.relay_routing import SharedRelays  # redis-py only when configured

                    await stack.enter_async_context(SharedRelays(self._relays, self._redis_url, self.streams).running())
                yield
        finally:
            await self.streams.close()
            await self.recorder.close()
            await self._limits.close()

    async def handle(self, scope: Scope, receive: Receive, send: Send, route: Route) -> None:
        edge = scope[EDGE_KEY] = EdgeRequest.from_scope(scope, route.org, route.toolkit)
        edge.domain, edge.resource = route.domain, route.endpoint
        if self.oauth is not None:
            edge.resource_metadata = self.oauth.metadata_url(route.endpoint)
        reset = request_base_url.set(route.base_url)
        try:
            # The answers this request reads count, for the org whose toolkit answers, until its
            # response is written.
            with self._answers.holding(route.org):
                await self._checks(scope, receive, send)
        finally:
            request_base_url.reset(reset)

    async def _called_tool(self, edge: EdgeRequest) -> ToolkitAccess:
        """The cached view, plus the called tool when it lies beyond the first tools/list page
        (validation, the lean path and the SDK's schema hook read it from `access.tools`)."""
        access, message = edge.access, edge.message
        assert access is not None
        if access.complete or not isinstance(message, dict) or message.get("method") != "tools/call":
            return access
        params = message.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        if not isinstance(name, str):
            return access
        return await self._access.entry_for(access, edge.token, edge.org, edge.toolkit, name, key=edge.key)

    def _session_on(self, edge: EdgeRequest, send: Send) -> Send:
        """An `initialize` that negotiates an initialize-era version is answered with a session
        id (docs/adr/0030): the Python SDK opens its standalone stream only then."""
        message = edge.message
        if not isinstance(message, dict) or message.get("method") != "initialize":
            return send
        params = message.get("params")
        requested = params.get("protocolVersion") if isinstance(params, dict) else None
        version = versions.negotiated_at_initialize(requested if isinstance(requested, str) else None)
        if version is None or version in MODERN_PROTOCOL_VERSIONS:
            return send
        session_id = self._sessions.issue(edge, version)
        return send if session_id is None else issuing(send, session_id)

    async def _endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request passed every check: hand it to the SDK with the caller attached."""
        edge = edge_of(scope)
        if edge.access is None:
            raise RuntimeError("endpoint reached before the credential check")
        try:
            access = await self._called_tool(edge)
        except errors.PolicyError as exc:  # fail closed, as the credential check does
            log.warning("policy unavailable on %s/%s: %s", edge.org, edge.toolkit, exc.message)
            await responses.policy_unavailable()(scope, receive, send)
            return
        gateway_request = GatewayRequest(
            credential=edge.token, org=edge.org, toolkit=edge.toolkit, access=access, **edge.facts()
        )
        if await route_client_message(self._relays, edge.token, edge.body, scope, receive, send):
            return  # a client's answer to a relayed request, or its cancellation of a relayed call
        scope[SCOPE_KEY] = gateway_request
        if versions.is_batch(edge.body):
            await jsonrpc_body(400, versions.batch_refusal())(scope, receive, send)
            return
        if edge.message is not None and await self._lean.handle(scope, receive, send, gateway_request, edge.message):
            return  # a single tools/call, tools/list or ping, answered without the SDK's machinery
        offered = versions.counter_offer(edge.body)
        if offered is not None:
            scope, receive = versions.scope_with_length(scope, len(offered)), versions.replay_body(offered, receive)
        answer = versions.naming_served_versions(self._session_on(edge, send))
        channel = scope[CHANNEL_KEY] = ClientChannel(answer, receive)
        reset = current_request.set(gateway_request)
        try:
            await self._manager.handle_request(scope, receive, channel.send)
        finally:
            current_request.reset(reset)
