"""A 2026-07-28-only backend that misbehaves on `subscriptions/listen`, written at the HTTP
level (no SDK would send this): its first listen stream carries a line that is not JSON, a
JSON value nested past any parser's depth, then a proper `tools/list_changed`, then an event
of more than 15 MiB that never ends (or, `flood`, 5,000 identical list changes in one write
and then a prompts list change; or, `unhashable`, events whose method or URI is a JSON array,
then a proper `tools/list_changed`); every later listen stream opens and then says nothing.
Everything else is a minimal, correct 2026-07-28 server with a tool `noop`, and a tool `deep`
whose answer is JSON nested past any parser's depth."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import Receive, Scope, Send

from tests.support.servers import read_body

TOOLS_CHANGED = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed", "params": {}}
PROMPTS_CHANGED = {"jsonrpc": "2.0", "method": "notifications/prompts/list_changed", "params": {}}


class UnrulyBackend:
    def __init__(self, flood: bool = False, unhashable: bool = False) -> None:
        self.flood = flood  # the first listen floods instead: 5,000 identical list changes, then one more
        self.unhashable = unhashable  # the first listen sends a method and a URI that are arrays first
        self.listens = 0  # listen requests received (each reopening counts)
        self.silent = asyncio.Event()  # set once a silent (hanging) listen stream is open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        message = json.loads(body)
        method, request_id = message.get("method"), message.get("id")
        if method == "subscriptions/listen":
            self.listens += 1
            await self._listen(send, receive, first=self.listens == 1)
        elif method == "initialize":
            error = {"code": -32022, "message": "Unsupported protocol version", "data": {"supported": ["2026-07-28"]}}
            await _json(send, 400, {"jsonrpc": "2.0", "id": request_id, "error": error})
        elif request_id is None:
            await send({"type": "http.response.start", "status": 202, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        elif method == "tools/call" and (message.get("params") or {}).get("name") == "deep":
            await _raw(send, b'{"jsonrpc":"2.0","id":%d,"result":' % request_id + b"[" * 200_000)
        else:
            await _json(send, 200, {"jsonrpc": "2.0", "id": request_id, **_answer(str(method))})

    async def _listen(self, send: Send, receive: Receive, first: bool) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        if first and self.flood:
            await send(
                {"type": "http.response.body", "body": (_event(TOOLS_CHANGED) + b"\n\n") * 5_000, "more_body": True}
            )
            await send({"type": "http.response.body", "body": _event(PROMPTS_CHANGED) + b"\n\n", "more_body": True})
        elif first and self.unhashable:
            odd = (
                {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": ["test://a"]}},
                {"jsonrpc": "2.0", "method": ["notifications/tools/list_changed"]},
            )
            for event in (*(_event(m) for m in odd), _event(TOOLS_CHANGED)):
                await send({"type": "http.response.body", "body": event + b"\n\n", "more_body": True})
        elif first:
            for event in (b"data: not json at all", b"data: " + b"[" * 200_000, _event(TOOLS_CHANGED)):
                await send({"type": "http.response.body", "body": event + b"\n\n", "more_body": True})
            huge = b"data: " + b"x" * (16 * 1024 * 1024)  # over the 15 MiB per event, and no end
            await send({"type": "http.response.body", "body": huge, "more_body": True})
        else:
            self.silent.set()
        while (await receive())["type"] != "http.disconnect":
            pass


def _answer(method: str) -> dict[str, Any]:
    if method == "server/discover":
        return {
            "result": {"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}, "resultType": "complete"}
        }
    if method == "tools/list":
        tools = [
            {"name": "noop", "description": "Answers.", "inputSchema": {"type": "object"}},
            {
                "name": "deep",
                "description": "Answers JSON nested past any parser's depth.",
                "inputSchema": {"type": "object"},
            },
        ]
        return {"result": {"tools": tools, "resultType": "complete"}}
    if method == "tools/call":
        return {"result": {"content": [{"type": "text", "text": "ok"}], "resultType": "complete"}}
    return {"error": {"code": -32601, "message": f"{method} not found"}}


def _event(message: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(message).encode()


async def _json(send: Send, status: int, payload: dict[str, Any]) -> None:
    await _raw(send, json.dumps(payload).encode(), status)


async def _raw(send: Send, body: bytes, status: int = 200) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
