"""A real stateful MCP backend (the SDK's MCPServer over streamable HTTP with sessions) that
sends notifications outside any request, on its standalone GET stream: resource updates for
what was subscribed, log messages and list changes. It serves 2026-07-28 too (every `mcp` 2.x
server does), and `announce` tells that era's clients the same on their `subscriptions/listen`
streams (its bus counts them). Records the subscriptions it was sent, so tests can prove a
refused subscription never reached it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPDeprecationWarning
from starlette.types import ASGIApp

from tests.support.listening_backend import CountingBus

WATCHED = "test://watched"
HIDDEN = "test://hidden"


@dataclass
class Seen:
    subscribed: list[str] = field(default_factory=list)
    unsubscribed: list[str] = field(default_factory=list)


class NotifyingBackend:
    def __init__(self) -> None:
        self.seen = Seen()
        self.bus = CountingBus()
        self.server = MCPServer("notifying-backend", subscriptions=self.bus)
        server, seen = self.server, self.seen

        @server.resource(WATCHED, name="watched", description="Changes when announced", mime_type="text/plain")
        def watched() -> str:
            return "watched"

        @server.resource(HIDDEN, name="hidden", description="Blocked in tests", mime_type="text/plain")
        def hidden() -> str:
            return "hidden"

        @server.tool(description="Sends, outside this request: resources/updated for `uri`, a log, a list change.")
        async def announce(ctx: Context, uri: str) -> str:
            session = ctx.request_context.session  # not request-scoped: the standalone stream carries these
            await session.send_resource_updated(uri)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)  # 2025's logging, still the era's way
                await session.send_log_message("warning", {"announced": uri}, logger="notifying")
            await session.send_tool_list_changed()
            # 2026-07-28's way (the SDK's docstring: each era is told its own way): listen streams only.
            await ctx.notify_resource_updated(uri)
            await ctx.notify_tools_changed()
            return "announced"

        async def subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
            seen.subscribed.append(str(params.uri))
            return types.EmptyResult()

        async def unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
            seen.unsubscribed.append(str(params.uri))
            return types.EmptyResult()

        lowlevel = server._lowlevel_server
        lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
        lowlevel.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)

    async def forget_sessions(self) -> None:
        """As a restarted backend would: every session ends (its streams close) and is unknown (404)."""
        manager = self.server.session_manager
        for transport in list(manager._server_instances.values()):
            await transport.terminate()
        manager._server_instances.clear()

    def app(self) -> ASGIApp:
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        return self.server.streamable_http_app(transport_security=security)
