"""The front's ASGI application: routes toolkit endpoints to the MCP gateway, answers
client probes, and mounts the admin REST API and console."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from mcp.server.transport_security import TransportSecuritySettings
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_front.access import AccessCache
from mcp_front.admin.auth import ConsoleAuth
from mcp_front.admin.console import build_console
from mcp_front.admin.console_settings import build_settings_pages
from mcp_front.admin.rest import AdminApi, build_admin_app
from mcp_front.backends.upstream import UpstreamPool
from mcp_front.mcp.approval_flows import ApprovalFlows
from mcp_front.mcp.calls import ToolCaller
from mcp_front.mcp.gateway import McpGateway, not_found
from mcp_front.mcp.signed_state import StateSigner
from mcp_front.mcp.tasks import TaskHandlers
from policy_service.client import PolicyClient, channel_tls
from policy_service.config import Settings
from policy_service.toolkits.egress import EgressPolicy

log = logging.getLogger("monomcp.front")

_SLUG = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
TOOLKIT_PATH = re.compile(rf"^/({_SLUG})/({_SLUG})/mcp/?$")


@dataclass
class FrontApp:
    """Holds the long-lived clients; `__call__` is the ASGI entry point."""

    settings: Settings
    policy: PolicyClient
    upstreams: UpstreamPool
    gateway: McpGateway
    extra: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        started = time.perf_counter()
        status_holder: list[int] = []
        request_id: list[bytes] = []

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder.append(message["status"])
                request_id.extend(v for k, v in message.get("headers", ()) if k == b"x-request-id")
            await send(message)

        match = TOOLKIT_PATH.match(path)
        if match:
            await self.gateway.handle(scope, receive, send_logged, match.group(1), match.group(2))
        elif path.startswith("/.well-known/"):
            # No OAuth metadata: this deployment uses static bearer credentials, and clients that
            # find metadata drop their Authorization header to start an OAuth flow.
            await JSONResponse({"error": "not_found"}, status_code=404)(scope, receive, send_logged)
        elif path in ("/healthz", "/readyz"):
            await JSONResponse({"status": "ok"})(scope, receive, send_logged)
        elif self.extra is not None and (
            path.startswith("/api/") or path.startswith("/console") or path in ("/docs", "/openapi.json")
        ):
            await self.extra(scope, receive, send_logged)
        elif path.endswith("/mcp") or path.endswith("/mcp/"):
            await not_found()(scope, receive, send_logged)
        else:
            await Response("Not Found", status_code=404)(scope, receive, send_logged)
        status = status_holder[0] if status_holder else 0
        # One structured line per request; successes at DEBUG keep the hot path cheap.
        log.log(
            logging.DEBUG if 200 <= status < 300 else logging.INFO,
            "http method=%s path=%s status=%s duration_ms=%.2f request_id=%s",
            scope.get("method"),
            path,
            status,
            (time.perf_counter() - started) * 1000,
            request_id[0].decode() if request_id else "-",
        )

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
            assert message["type"] == "lifespan.shutdown"
        await self.upstreams.close()
        await self.policy.close()
        await send({"type": "lifespan.shutdown.complete"})


def security_settings(settings: Settings) -> TransportSecuritySettings:
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=settings.allowed_host_list,
        allowed_origins=settings.allowed_origin_list,
    )


def build_app(settings: Settings, policy_addr: str | None = None) -> FrontApp:
    policy = PolicyClient(
        policy_addr or settings.policy_addr,
        timeout=settings.policy_timeout_seconds,
        service_token=settings.service_token,
        tls=channel_tls(settings.policy_ca, settings.policy_client_cert, settings.policy_client_key),
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
    caller = ToolCaller(policy, upstreams, settings.public_url, flows)
    tasks = TaskHandlers(policy, caller, settings.public_url, settings.task_result_wait_seconds)
    access = AccessCache(policy, min(settings.cache_ttl_seconds, 1.0))
    gateway = McpGateway(policy, access, caller, tasks, security_settings(settings), settings.max_body_bytes)
    auth = ConsoleAuth(StateSigner(settings.request_state_key), settings.public_url.startswith("https://"))
    admin = AdminApi(policy_addr or settings.policy_addr, settings.policy_timeout_seconds, auth, egress)
    return FrontApp(
        settings, policy, upstreams, gateway, build_admin_app(admin, build_console(admin), build_settings_pages(admin))
    )


@contextlib.asynccontextmanager
async def running(app: FrontApp) -> AsyncIterator[FrontApp]:
    """For tests embedding the app without a lifespan-aware server."""
    async with app.gateway.run():
        yield app
