"""A real MCP server (SDK, stateful, SSE) with the conformance suite's streaming tools.

The official suite's `tools-call-with-logging`, `-with-progress`, `-sampling`,
`-elicitation`, `elicitation-sep1034-defaults` and `elicitation-sep1330-enums` scenarios
call these tools by name; registering this server as a toolkit lets the suite measure
the gateway's relay (progress, logs, server-to-client requests) end to end. Tests use it
as a backend that emits every kind of message a call can carry.

Run: python -m demo_backend.conformance_server PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPDeprecationWarning
from starlette.applications import Starlette

SEP1034_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "default": "John Doe"},
        "age": {"type": "integer", "default": 30},
        "score": {"type": "number", "default": 95.5},
        "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
        "verified": {"type": "boolean", "default": True},
    },
}

SEP1330_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {
            "type": "string",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
}

USER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}


@dataclass
class Observed:
    """What the fixture saw, for tests: slow calls that finished, and ones cancelled midway."""

    finished: int = 0
    cancelled: int = 0
    levels: list[str] = field(default_factory=list)  # logging/setLevel requests received


@contextlib.contextmanager
def _on_purpose() -> Iterator[None]:
    """Logging, sampling and elicitation requests are deprecated at 2026-07-28; these tools test them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        yield


def _text(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


def build_server(observed: Observed | None = None) -> MCPServer:
    server = MCPServer("monomcp-conformance-fixture")
    seen = observed if observed is not None else Observed()

    async def set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        seen.levels.append(params.level)  # the suite only needs the request accepted; logs go out at info
        return types.EmptyResult()

    server._lowlevel_server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    _logging_and_progress(server, seen)
    _client_requests(server)
    return server


def _logging_and_progress(server: MCPServer, seen: Observed) -> None:
    @server.tool(description="Sends three log notifications while it runs.")
    async def test_tool_with_logging(ctx: Context) -> str:
        for step in ("Tool execution started", "Tool processing data", "Tool execution completed"):
            with _on_purpose():
                await ctx.info(step)
            await asyncio.sleep(0.05)
        return "Tool with logging executed successfully"

    @server.tool(description="Reports progress 0, 50, 100 of 100 while it runs.")
    async def test_tool_with_progress(ctx: Context) -> str:
        for done in (0, 50, 100):
            await ctx.report_progress(done, 100, f"step {done}")
            await asyncio.sleep(0.05)
        return "Tool with progress executed successfully"

    @server.tool(description="Waits `seconds` (reporting progress each 50 ms) unless it is cancelled first.")
    async def test_slow(ctx: Context, seconds: float = 5.0) -> str:
        steps = int(seconds / 0.05)
        try:
            for step in range(steps):
                await ctx.report_progress(step, steps)
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            seen.cancelled += 1
            raise
        seen.finished += 1
        return "finished"


def _client_requests(server: MCPServer) -> None:
    @server.tool(description="Asks the client's LLM to complete `prompt` (sampling/createMessage).")
    async def test_sampling(ctx: Context, prompt: str) -> types.CallToolResult:
        with _on_purpose():
            answer = await ctx.request_context.session.create_message(
                [types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
                max_tokens=100,
                related_request_id=ctx.request_id,
            )
        content = answer.content
        text = content.text if isinstance(content, types.TextContent) else str(content)
        return _text(f"LLM response: {text}")

    @server.tool(description="Asks the user for a username and email (elicitation/create).")
    async def test_elicitation(ctx: Context, message: str) -> types.CallToolResult:
        return await _elicit(ctx, message, USER_SCHEMA)

    @server.tool(description="Elicits with defaults for every primitive type (SEP-1034).")
    async def test_elicitation_sep1034_defaults(ctx: Context) -> types.CallToolResult:
        return await _elicit(ctx, "Please review and update the form fields with defaults", SEP1034_SCHEMA)

    @server.tool(description="Elicits with all five enum schema variants (SEP-1330).")
    async def test_elicitation_sep1330_enums(ctx: Context) -> types.CallToolResult:
        return await _elicit(ctx, "Please select options from the enum fields", SEP1330_SCHEMA)


async def _elicit(ctx: Context, message: str, schema: dict[str, Any]) -> types.CallToolResult:
    with _on_purpose():
        answer = await ctx.request_context.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    return _text(f"User response: action={answer.action}, content={answer.content}")


def build_app(observed: Observed | None = None) -> Starlette:
    """Stateful with SSE responses: a server-to-client request needs a session to answer into."""
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return build_server(observed).streamable_http_app(transport_security=security)


if __name__ == "__main__":
    uvicorn.run(build_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
