"""The front's ASGI application: a small middleware stack (request log and id, header
limit) around a router that sends toolkit endpoints to the MCP gateway, answers client
probes and health checks, and mounts the admin REST API and console."""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_front.access import AccessCache
from mcp_front.backends.answer_budget import AnswerBudget
from mcp_front.backends.upstream import UpstreamPool
from mcp_front.edge.failures import CredentialFailures
from mcp_front.edge.limits import KeyLimiter, LimitSettings, LocalLimiter
from mcp_front.edge.oauth import METADATA_PREFIX, ResourceServer
from mcp_front.edge.request_log import RequestLogMiddleware
from mcp_front.edge.routing import Router, VerifiedDomains
from mcp_front.edge.sessions import SessionIds
from mcp_front.mcp.approval_flows import ApprovalFlows
from mcp_front.mcp.calls import ToolCaller
from mcp_front.mcp.gateway import EdgeLimits, McpGateway, not_found
from mcp_front.mcp.sdk import TransportSecuritySettings
from mcp_front.mcp.signed_state import StateSigner
from mcp_front.mcp.tasks import TaskHandlers
from mcp_front.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from mcp_front.observability.metrics import FrontMetrics
from mcp_front.observability.tracing import asgi_middleware
from policy_service.client import PolicyClient, channel_tls
from policy_service.config import Settings
from policy_service.health_client import PolicyReadiness
from policy_service.toolkits.egress import EgressPolicy

log = logging.getLogger("monomcp.front")

_ADMIN_PATHS = ("/api/", "/console")


@dataclass
class FrontApp:
    """Holds the long-lived clients; `__call__` is the ASGI entry point."""

    settings: Settings
    policy: PolicyClient
    upstreams: UpstreamPool
    gateway: McpGateway
    readiness: PolicyReadiness
    extra_factory: Callable[[], ASGIApp] | None = None  # the admin REST API and console, built when first asked
    metrics: FrontMetrics = field(default_factory=FrontMetrics)
    router: Router | None = None

    def __post_init__(self) -> None:
        if self.router is None:
            domains = VerifiedDomains(self.policy, self.settings.domain_cache_seconds)
            self.router = Router(domains, self.settings.allowed_host_list, self.settings.public_url)
        self._stack: ASGIApp = RequestLogMiddleware(self._route, self.metrics, self.settings.max_header_bytes)
        self._stack = asgi_middleware(self._stack)  # a span per request when OTEL_* turns tracing on
        self._extra: ASGIApp | None = None

    @property
    def extra(self) -> ASGIApp | None:
        """The admin app: FastAPI and the console cost ~1 s of imports a toolkit call never needs."""
        if self._extra is None and self.extra_factory is not None:
            self._extra = self.extra_factory()
        return self._extra

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._stack(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        route = await self._router.resolve(scope)
        if route is not None:
            await self.gateway.handle(scope, receive, send, route)
            return
        response: Response | None = None
        if path.startswith("/.well-known/"):
            # No OAuth metadata unless the operator turned the resource-server mode on: clients
            # that find metadata drop a static Authorization header to start an OAuth flow.
            response = await self._well_known(scope)
        elif path == "/metrics":
            response = self._metrics_response(scope)
        elif path == "/healthz":  # the process is alive
            response = JSONResponse({"status": "ok"})
        elif path == "/readyz":  # and can serve: the policy service answers its health check
            ready = await self.readiness.ready()
            response = JSONResponse({"status": "ok" if ready else "policy service unavailable"}, 200 if ready else 503)
        elif (path.startswith(_ADMIN_PATHS) or path in ("/docs", "/openapi.json")) and self.extra is not None:
            if await self._router.serves_host(scope):
                await self.extra(scope, receive, send)
                return
            response = Response("Invalid Host header", status_code=421)  # as toolkit endpoints answer
        elif path.endswith("/mcp") or path.endswith("/mcp/"):
            response = not_found()
        else:
            response = Response("Not Found", status_code=404)
        await response(scope, receive, send)

    async def _well_known(self, scope: Scope) -> Response:
        path: str = scope["path"]
        oauth = self.gateway.oauth
        if oauth is not None and path.startswith(METADATA_PREFIX + "/"):
            route = await self._router.resolve({**scope, "path": path[len(METADATA_PREFIX) :]})
            if route is not None:
                return JSONResponse(oauth.metadata(route.endpoint), headers={"Cache-Control": "max-age=300"})
        return JSONResponse({"error": "not_found"}, status_code=404)

    @property
    def _router(self) -> Router:
        if self.router is None:
            raise RuntimeError("FrontApp built without a router")
        return self.router

    def _metrics_response(self, scope: Scope) -> Response:
        """The Prometheus scrape; behind a bearer token when MONOMCP_METRICS_TOKEN is set."""
        token = self.settings.metrics_token
        if token:
            sent = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                return JSONResponse({"error": "unauthorized"}, status_code=401)
        return Response(self.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(self.gateway.run())
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            if message["type"] != "lifespan.shutdown":
                raise RuntimeError(f"unexpected lifespan message {message['type']!r}")
        await self.upstreams.close()
        await self.readiness.close()
        await self.policy.close()
        await send({"type": "lifespan.shutdown.complete"})


def security_settings(settings: Settings) -> TransportSecuritySettings:
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=settings.allowed_host_list,
        allowed_origins=settings.allowed_origin_list,
    )


def build_limiter(settings: Settings, holder: str = "key") -> KeyLimiter:
    """The limits of each key, of each signed-in person (the per-key budget, over all their
    sessions' tokens) or of each organization as a whole."""
    if holder == "organization":
        rate, burst = settings.org_rate_limit_per_second, settings.org_rate_limit_burst
        limits = LimitSettings(rate, burst, settings.max_concurrent_per_org, holder)
    else:
        rate, burst = settings.rate_limit_per_second, settings.rate_limit_burst
        limits = LimitSettings(rate, burst, settings.max_concurrent_per_key, holder)
    if settings.redis_url and not limits.off:
        # Imported here: redis-py loads the OpenTelemetry SDK's metrics when it is installed.
        from mcp_front.edge.redis_limits import RedisLimiter

        # A replica that dies frees its in-flight slots once the longest request could have ended.
        lease = max(settings.task_result_wait_seconds, settings.backend_timeout_seconds) + 60.0
        prefix = "monomcp:limit:" if holder == "key" else f"monomcp:{holder}-limit:"
        return RedisLimiter(settings.redis_url, limits, lease, prefix)
    return LocalLimiter(limits)


def build_app(settings: Settings, policy_addr: str | None = None) -> FrontApp:
    address = policy_addr or settings.policy_addr
    tls = channel_tls(settings.policy_ca, settings.policy_client_cert, settings.policy_client_key)
    policy = PolicyClient(
        address,
        timeout=settings.policy_timeout_seconds,
        service_token=settings.service_token,
        tls=tls,
        stream=settings.policy_stream,
    )
    egress = EgressPolicy.from_settings(settings)
    upstreams = UpstreamPool(egress=egress)
    flows = ApprovalFlows(
        policy,
        StateSigner(settings.request_state_key),
        settings.public_url,
        settings.approval_wait_seconds,
        waiters_per_credential=settings.approval_waiters_per_credential,
    )
    metrics = FrontMetrics()
    metrics.answers = answers = AnswerBudget(settings.answer_budget_bytes, settings.answer_budget_wait_seconds)
    caller = ToolCaller(policy, upstreams, settings.public_url, flows, metrics)
    tasks = TaskHandlers(policy, caller, settings.public_url, settings.task_result_wait_seconds)
    access = AccessCache(policy, min(settings.cache_ttl_seconds, 1.0))
    failures = CredentialFailures(LimitSettings(settings.auth_failures_per_second, settings.auth_failure_burst, 0))
    limits = EdgeLimits(
        settings.max_body_bytes,
        settings.body_timeout_seconds,
        build_limiter(settings),
        failures,
        org_limiter=build_limiter(settings, "organization"),
        person_limiter=build_limiter(settings, "account"),
        max_streams_per_org=settings.max_streams_per_org,
    )
    oauth = ResourceServer.from_settings(settings)
    gateway = McpGateway(
        policy,
        access,
        caller,
        tasks,
        security_settings(settings),
        limits,
        answers,
        oauth,
        redis_url=settings.redis_url,
        sessions=SessionIds(StateSigner(settings.request_state_key)),
    )

    def build_extra() -> ASGIApp:
        from mcp_front.admin.auth import ConsoleAuth
        from mcp_front.admin.console import build_console
        from mcp_front.admin.console_settings import build_settings_pages
        from mcp_front.admin.rest import AdminApi, build_admin_app
        from mcp_front.admin.sso import SsoSettings, build_sso
        from mcp_front.edge.admin_guard import AdminLimits, BoundedBody

        auth = ConsoleAuth(StateSigner(settings.request_state_key), settings.public_url.startswith("https://"))
        admin = AdminApi(address, settings.policy_timeout_seconds, auth, egress, settings.service_token)
        sso = SsoSettings.from_settings(settings)
        sso_routes = [build_sso(admin, sso, StateSigner(settings.request_state_key))] if sso else []
        admin.single_sign_on = sso is not None
        bounded = BoundedBody(
            build_admin_app(admin, build_console(admin), build_settings_pages(admin), *sso_routes),
            settings.max_body_bytes,
            settings.body_timeout_seconds,
        )
        return AdminLimits(bounded, limits.limiter, failures)

    return FrontApp(
        settings, policy, upstreams, gateway, PolicyReadiness(address, policy.channel.open_target), build_extra, metrics
    )


@contextlib.asynccontextmanager
async def running(app: FrontApp) -> AsyncIterator[FrontApp]:
    """For tests embedding the app without a lifespan-aware server."""
    async with app.gateway.run():
        yield app
