"""A small real MCP server used as a toolkit backend in tests: counts executions, can be
slow, returns every content type, and fails on demand."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import AudioContent, CallToolResult, EmbeddedResource, ImageContent, TextContent, TextResourceContents
from starlette.applications import Starlette

PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


class Upstream:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.server = MCPServer("test-upstream")
        self._register()

    def _register(self) -> None:
        server, calls = self.server, self.calls

        @server.tool(description="Echo the text back.")
        def echo(text: str) -> str:
            calls["echo"] += 1
            return text

        @server.tool(description="Add two integers.")
        def add(a: int, b: int) -> dict[str, int]:
            calls["add"] += 1
            return {"sum": a + b}

        @server.tool(description="A state-changing action guarded by approvals.")
        def transfer(amount: int, to: str) -> str:
            calls["transfer"] += 1
            return f"sent {amount} to {to}"

        @server.tool(description="Destructive; blocked by default.")
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

    def app(self) -> Starlette:
        return self.server.streamable_http_app(stateless_http=True, json_response=True)

    async def catalogue(self) -> list[dict[str, Any]]:
        import json

        defaults = {"transfer": "needs_approval", "wipe": "blocked"}
        return [
            {
                "name": t.name,
                "description": t.description or "",
                "input_schema_json": json.dumps(t.input_schema),
                "output_schema_json": json.dumps(t.output_schema) if t.output_schema else "",
                "default_permission": defaults.get(t.name, "always_allow"),
            }
            for t in await self.server.list_tools()
        ]
