"""A real MCP server that counts executions per (tool, unique id), so every execution can
be matched to the audit row and the client response that carry the same id."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette

RECORD = "record"  # always_allow
TRANSFER = "transfer"  # needs_approval
DEFAULTS = {RECORD: "always_allow", TRANSFER: "needs_approval"}


def record_answer(call_id: str) -> str:
    return f"recorded {call_id}"


def transfer_answer(call_id: str, amount: int) -> str:
    return f"sent {amount} for {call_id}"


class CountingUpstream:
    def __init__(self) -> None:
        self.executions: Counter[tuple[str, str]] = Counter()
        self.server = MCPServer("fault-upstream")
        self._register()

    def _register(self) -> None:
        server, executions = self.server, self.executions

        @server.tool(description="Records one event; safe to run without approval.")
        def record(id: str) -> str:
            executions[(RECORD, id)] += 1
            return record_answer(id)

        @server.tool(description="Moves money; every call needs an admin's approval.")
        def transfer(id: str, amount: int) -> str:
            executions[(TRANSFER, id)] += 1
            return transfer_answer(id, amount)

    def app(self) -> Starlette:
        return self.server.streamable_http_app(stateless_http=True, json_response=True)

    async def catalogue(self) -> list[dict[str, Any]]:
        """The tool catalogue as `sync_tools` takes it, with each tool's default permission."""
        return [
            {
                "name": t.name,
                "description": t.description or "",
                "input_schema_json": json.dumps(t.input_schema),
                "output_schema_json": json.dumps(t.output_schema) if t.output_schema else "",
                "default_permission": DEFAULTS[t.name],
            }
            for t in await self.server.list_tools()
        ]
