"""A real MCP server that counts executions per (tool, unique id), so every execution can
be matched to the audit row and the client response that carry the same id."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

RECORD = "record"  # always_allow
TRANSFER = "transfer"  # needs_approval
DEFAULTS = {RECORD: "always_allow", TRANSFER: "needs_approval"}


def record_answer(call_id: str) -> str:
    return f"recorded {call_id}"


def transfer_answer(call_id: str, amount: int) -> str:
    return f"sent {amount} for {call_id}"


class CountingUpstream:
    """`hold()` makes the next `record` calls wait (after counting) until `release()`;
    ids in `crash_after_executing` run, then the connection drops mid-response once."""

    def __init__(self) -> None:
        self.executions: Counter[tuple[str, str]] = Counter()
        self.arrived = asyncio.Event()
        self._released = asyncio.Event()
        self._released.set()
        self.crash_after_executing: set[str] = set()
        self.server = MCPServer("fault-upstream")
        self._register()

    def hold(self) -> None:
        self.arrived.clear()
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def _register(self) -> None:
        server, executions = self.server, self.executions

        @server.tool(description="Records one event; safe to run without approval.")
        async def record(id: str) -> str:
            executions[(RECORD, id)] += 1
            self.arrived.set()
            await self._released.wait()
            return record_answer(id)

        @server.tool(description="Moves money; every call needs an admin's approval.")
        def transfer(id: str, amount: int) -> str:
            executions[(TRANSFER, id)] += 1
            return transfer_answer(id, amount)

    def app(self) -> ASGIApp:
        inner: Starlette = self.server.streamable_http_app(stateless_http=True, json_response=True)
        return _CrashAfterExecuting(inner, self.crash_after_executing)

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


class _CrashAfterExecuting:
    """For a call whose `id` is listed: let the tool run, send the response head, then leave
    the body unsent so the server drops the connection (a backend dying mid-response). Each
    id drops once."""

    def __init__(self, app: ASGIApp, ids: set[str]) -> None:
        self._app = app
        self._ids = ids

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._ids:
            await self._app(scope, receive, send)
            return
        body, messages = await _read_body(receive)
        drop = _call_id(body) in self._ids
        if drop:
            self._ids.discard(_call_id(body))
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, {"type": "http.disconnect"})

        async def head_only(message: Message) -> None:
            if drop and message["type"] == "http.response.body":
                return  # the app returns with the response unfinished: uvicorn drops the connection
            await send(message)

        await self._app(scope, replayed, head_only)


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    return b"".join(m.get("body", b"") for m in messages), messages


def _call_id(body: bytes) -> str | None:
    try:
        message = json.loads(body)
        call_id = message["params"]["arguments"]["id"]
    except (ValueError, KeyError, TypeError):
        return None
    return call_id if isinstance(call_id, str) else None
