"""A real 2026-07-28-only backend (the SDK's MCPServer behind `ModernOnlyBackend`) whose
out-of-call events travel only on `subscriptions/listen` streams, that era's way: the test
publishes on the server's own subscription bus, outside any request. Records the listen
filters it was sent and counts the listen streams open on it, so tests can see the gateway
follow it, re-filter it and let it go."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus, ServerEvent
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Scope, Send

from tests.support.era_backends import ModernOnlyBackend
from tests.support.servers import serve_asgi

WATCHED = "test://watched"
OTHER = "test://other"
HIDDEN = "test://hidden"


class CountingBus(InMemorySubscriptionBus):
    """The SDK's in-process bus, counting the listen streams subscribed to it."""

    def __init__(self) -> None:
        super().__init__()
        self.listening = 0

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        unsubscribe = super().subscribe(listener)
        self.listening += 1
        done = False

        def counted() -> None:
            nonlocal done
            if not done:
                done = True
                self.listening -= 1
            unsubscribe()

        return counted


class ListenRecorder(ModernOnlyBackend):
    """2026-07-28 only; remembers the `notifications` filter of every listen request."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.filters: list[dict[str, Any]] = []

    async def on_post(self, scope: Scope, message: dict[str, Any], send: Send) -> dict[str, Any] | None:
        if message.get("method") == "subscriptions/listen":
            self.filters.append(dict((message.get("params") or {}).get("notifications") or {}))
        return await super().on_post(scope, message, send)

    def uris(self) -> list[list[str]]:
        return [list(f.get("resourceSubscriptions") or []) for f in self.filters]


def _text(value: str) -> Callable[[], str]:
    def content() -> str:
        return value

    return content


def add_resources(server: MCPServer) -> None:
    """The three text resources the listening tests watch, each reading as its own URI."""
    for uri in (WATCHED, OTHER, HIDDEN):
        server.resource(uri, name=uri.rsplit("/", 1)[-1], mime_type="text/plain")(_text(uri))


@asynccontextmanager
async def serve() -> AsyncIterator[tuple[str, CountingBus, ListenRecorder]]:
    """The backend's URL, its bus (publish on it to send an event outside any request) and its recorder."""
    bus = CountingBus()
    server = MCPServer("listening-backend", subscriptions=bus)
    add_resources(server)

    @server.tool(description="Answers, nothing more.")
    def noop() -> str:
        return "ok"

    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    recorder = ListenRecorder(server.streamable_http_app(stateless_http=True, transport_security=security))
    async with serve_asgi(recorder) as base:
        yield f"{base}/mcp", bus, recorder
