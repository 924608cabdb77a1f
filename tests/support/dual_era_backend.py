"""A real dual-era backend: the SDK's `MCPServer` over stateful streamable HTTP, which serves
the initialize era (handshake sessions, a GET stream per session) and 2026-07-28 (per-request
envelopes, `subscriptions/listen`) at one URL, as every `mcp` 2.x server does. Its tools send
what belongs to no request each era's way (docs/adr/0053-per-era-routing-of-dual-era-backends.md):

- `announce_to_listeners`: `ctx.notify_resources_changed()`, which the SDK publishes on its
  subscription bus, so only `subscriptions/listen` streams hear it;
- `announce_to_sessions`: `ctx.session.send_tool_list_changed()`, which reaches only the GET
  stream of the initialize-era session the call travels in (a 2026-07-28 call has none);
- `touch`: `ctx.notify_resource_updated(uri)`, to listen streams that subscribed to `uri`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Scope, Send

from tests.support.era_backends import PostFilter
from tests.support.listening_backend import CountingBus, add_resources
from tests.support.servers import serve_asgi


class FilterRecorder(PostFilter):
    """Records every POSTed method and the `notifications` filter of every listen request."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.methods: list[str] = []
        self.filters: list[dict[str, Any]] = []

    async def on_post(self, scope: Scope, message: dict[str, Any], send: Send) -> dict[str, Any] | None:
        self.methods.append(str(message.get("method")))
        if message.get("method") == "subscriptions/listen":
            self.filters.append(dict((message.get("params") or {}).get("notifications") or {}))
        return message

    def uris(self) -> list[list[str]]:
        return [list(f.get("resourceSubscriptions") or []) for f in self.filters]


@asynccontextmanager
async def serve() -> AsyncIterator[tuple[str, CountingBus, FilterRecorder]]:
    """The backend's URL, its subscription bus and the recorder of the listen filters it got."""
    bus = CountingBus()
    server = MCPServer("dual-era-backend", subscriptions=bus)
    add_resources(server)

    @server.tool(description="Tells listen streams the resource list changed.")
    async def announce_to_listeners(ctx: Context) -> str:
        await ctx.notify_resources_changed()
        return "announced"

    @server.tool(description="Tells the caller's session the tool list changed.")
    async def announce_to_sessions(ctx: Context) -> str:
        await ctx.session.send_tool_list_changed()
        return "announced"

    @server.tool(description="Tells listen streams subscribed to `uri` that it changed.")
    async def touch(uri: str, ctx: Context) -> str:
        await ctx.notify_resource_updated(uri)
        return "touched"

    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    recorder = FilterRecorder(server.streamable_http_app(transport_security=security))
    async with serve_asgi(recorder) as base:
        yield f"{base}/mcp", bus, recorder
