"""A bare SDK server with a no-op tool: the upstream the benchmark calls through the
gateway and directly, so the ratio shows the gateway's own cost."""

from __future__ import annotations

import sys
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

TOOL = {"name": "noop", "description": "Does nothing.", "inputSchema": {"type": "object", "properties": {}}}


def build() -> Any:
    async def list_tools(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> Any:
        return {"tools": [TOOL], "ttlMs": 0, "cacheScope": "private"}

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
        result = {"content": [{"type": "text", "text": "ok"}]}
        return {"resultType": "complete", **result} if ctx.protocol_version == "2026-07-28" else result

    server: Server[Any] = Server("noop", on_list_tools=list_tools, on_call_tool=call_tool)
    server.middleware = []
    return server.streamable_http_app(stateless_http=True, json_response=True)


if __name__ == "__main__":
    import gc

    app = build()
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
