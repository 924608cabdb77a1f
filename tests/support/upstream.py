"""A small real MCP server used as a toolkit backend in tests: counts executions, can be
slow, returns every content type, and fails on demand. It records every HTTP request it
receives (method, Authorization, Host, session) and, when stateful, which Authorization
opened each session."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import (
    AudioContent,
    CallToolResult,
    EmbeddedResource,
    Icon,
    ImageContent,
    TextContent,
    TextResourceContents,
    ToolAnnotations,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


@dataclass(frozen=True)
class SeenRequest:
    """One HTTP request as the upstream received it."""

    method: str  # the JSON-RPC method ("" for non-POST or unparsable bodies)
    authorization: str
    host: str
    session_id: str
    session_opened_by: str | None  # the Authorization of the initialize that opened this session


class _Recorder:
    """ASGI wrapper that records each request and which credential opened each session."""

    def __init__(self, app: ASGIApp, upstream: Upstream) -> None:
        self.app = app
        self.upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = bytearray()

        async def receive_recorded() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
            return message

        async def send_recorded(message: Message) -> None:
            if message["type"] == "http.response.start" and "mcp-session-id" not in headers:  # a session opens
                for name, value in message.get("headers", ()):
                    if name.lower() == b"mcp-session-id":
                        self.upstream.session_owners[value.decode()] = headers.get("authorization", "")
            await send(message)

        await self.app(scope, receive_recorded, send_recorded)
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            parsed = {}
        session = headers.get("mcp-session-id", "")
        self.upstream.requests.append(
            SeenRequest(
                method=parsed.get("method", "") if isinstance(parsed, dict) else "",
                authorization=headers.get("authorization", ""),
                host=headers.get("host", ""),
                session_id=session,
                session_opened_by=self.upstream.session_owners.get(session),
            )
        )


class Upstream:
    def __init__(self, stateful: bool = False) -> None:
        self.calls: Counter[str] = Counter()
        self.requests: list[SeenRequest] = []
        self.session_owners: dict[str, str] = {}
        self.stateful = stateful
        self.server = MCPServer("test-upstream")
        self._register()

    def _register(self) -> None:
        server, calls = self.server, self.calls

        @server.tool(
            description="Echo the text back.",
            annotations=ToolAnnotations(read_only_hint=True),
            icons=[Icon(src="https://example.com/echo.png", mime_type="image/png")],
            meta={"example.com/owner": "tests"},
        )
        def echo(text: str) -> str:
            calls["echo"] += 1
            return text

        @server.tool(description="Report the request _meta this backend received.")
        def show_meta(ctx: Context) -> dict[str, Any]:
            calls["show_meta"] += 1
            return {"meta": {k: v for k, v in dict(ctx.request_context.meta or {}).items()}}

        @server.tool(description="Add two integers.")
        def add(a: int, b: int) -> dict[str, int]:
            calls["add"] += 1
            return {"sum": a + b}

        @server.tool(description="A state-changing action guarded by approvals.")
        def transfer(amount: int, to: str) -> str:
            calls["transfer"] += 1
            return f"sent {amount} to {to}"

        @server.tool(description="Destructive; blocked by default.", annotations=ToolAnnotations(destructive_hint=True))
        def wipe(target: str) -> str:
            calls["wipe"] += 1
            return f"wiped {target}"

        @server.tool(description="Sleeps for the given seconds.")
        async def slow(seconds: float) -> str:
            calls["slow"] += 1
            await asyncio.sleep(seconds)
            return "done"

        @server.tool(description="Returns every content type.")
        def media() -> CallToolResult:
            calls["media"] += 1
            return CallToolResult(
                content=[
                    TextContent(type="text", text="hello"),
                    ImageContent(type="image", data=PNG_1PX, mime_type="image/png"),
                    AudioContent(type="audio", data=base64.b64encode(b"RIFF0000WAVE").decode(), mime_type="audio/wav"),
                    EmbeddedResource(
                        type="resource",
                        resource=TextResourceContents(uri="file:///notes.txt", text="notes", mime_type="text/plain"),
                    ),
                ],
                structured_content={"kinds": ["text", "image", "audio", "resource"]},
            )

        @server.tool(description="Reports a tool-level error.")
        def fails() -> CallToolResult:
            calls["fails"] += 1
            return CallToolResult(content=[TextContent(type="text", text="it broke")], is_error=True)

        @server.tool(description="Echoes a secret-bearing payload.")
        def login(username: str, password: str) -> dict[str, Any]:
            calls["login"] += 1
            return {"user": username, "token": "mmcp_" + "A" * 54}

    def app(self, any_host: bool = False) -> ASGIApp:
        """The ASGI app; `any_host` turns off the SDK's Host check (to reach it by another name)."""
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False) if any_host else None
        inner = self.server.streamable_http_app(
            stateless_http=not self.stateful, json_response=True, transport_security=security
        )
        return _Recorder(inner, self)

    async def catalogue(self) -> list[dict[str, Any]]:
        import json

        defaults = {"transfer": "needs_approval", "wipe": "blocked"}
        return [
            {
                "name": t.name,
                "description": t.description or "",
                "input_schema_json": json.dumps(t.input_schema),
                "output_schema_json": json.dumps(t.output_schema) if t.output_schema else "",
                "annotations_json": (
                    json.dumps(t.annotations.model_dump(mode="json", by_alias=True, exclude_none=True))
                    if t.annotations
                    else ""
                ),
                "default_permission": defaults.get(t.name, "always_allow"),
                "spec_json": json.dumps(t.model_dump(mode="json", by_alias=True, exclude_none=True)),
            }
            for t in await self.server.list_tools()
        ]
