"""A 2026-07-28-only backend (a real `mcp` SDK server behind `ModernOnlyBackend`) whose tool
asks the client for input the stateless way: an `input_required` result with its own
`requestState`, then the answer on the retry."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult

from tests.support.era_backends import ModernOnlyBackend
from tests.support.servers import serve_asgi

BACKEND_STATE = "backend-round-1"


def build() -> tuple[MCPServer, Counter[str]]:
    server, calls = MCPServer("input-backend"), Counter[str]()

    @server.tool(description="Greets whoever the client says it is.")
    def greet(greeting: str, ctx: Context) -> str | InputRequiredResult:
        answer = (ctx.input_responses or {}).get("name")
        if isinstance(answer, ElicitResult) and answer.action == "accept" and answer.content:
            calls["answered"] += 1
            return f"{greeting}, {answer.content['name']} (state {ctx.request_state})"
        calls["asked"] += 1
        schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
        ask = ElicitRequest(params=ElicitRequestFormParams(message="Your name?", requested_schema=schema))
        return InputRequiredResult(input_requests={"name": ask}, request_state=BACKEND_STATE)

    return server, calls


@asynccontextmanager
async def serve(dual_era: bool = False) -> AsyncIterator[tuple[str, Counter[str]]]:
    """2026-07-28 only, or (`dual_era`) the SDK server as it is: both eras."""
    server, calls = build()
    inner = server.streamable_http_app(stateless_http=True, json_response=True)
    app = inner if dual_era else ModernOnlyBackend(inner)
    async with serve_asgi(app) as base:
        yield f"{base}/mcp", calls
