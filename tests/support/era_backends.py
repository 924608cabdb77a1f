"""Stand-in backends that speak exactly one protocol version, as real ones do: a `mcp` 1.x
server (initialize up to 2025-06-18, 400 for any newer MCP-Protocol-Version header) and a
2026-07-28-only server (-32022 for the handshake). Both wrap the test Upstream."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_front.edge.body import replay
from tests.support.servers import read_body


async def _answer(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class PostFilter:
    """Wraps an app and sees each POSTed JSON-RPC message first: `on_post` answers it itself
    (returns None) or returns the message to pass on, the same object (its body goes on as
    it came) or a rewritten one. Everything else reaches the wrapped app untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def on_post(self, scope: Scope, message: dict[str, Any], send: Send) -> dict[str, Any] | None:
        return message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        message = json.loads(body)
        forward = await self.on_post(scope, message, send)
        if forward is None:
            return
        if forward is not message:
            body = json.dumps(forward).encode()
        await self.app(scope, replay(body, receive), send)


def _error(request_id: Any, error: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


class OldBackend(PostFilter):
    """Negotiates at most 2025-06-18 and then insists on it, like `mcp` 1.x (before 2025-11-25)."""

    VERSION = "2025-06-18"

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self.versions_seen: list[str | None] = []

    async def on_post(self, scope: Scope, message: dict[str, Any], send: Send) -> dict[str, Any] | None:
        version = _header(scope, b"mcp-protocol-version")
        self.versions_seen.append(version)
        if message.get("method") == "initialize":
            return {**message, "params": {**message["params"], "protocolVersion": self.VERSION}}
        if version is not None and version != self.VERSION:
            error = {"code": -32600, "message": f"Bad Request: Unsupported protocol version: {version}"}
            await _answer(send, 400, _error(None, error))
            return None
        return message


class ModernOnlyBackend(PostFilter):
    """Serves only 2026-07-28: the handshake is refused with -32022 naming that version."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self.methods: list[str] = []

    async def on_post(self, scope: Scope, message: dict[str, Any], send: Send) -> dict[str, Any] | None:
        self.methods.append(str(message.get("method")))
        if message.get("method") == "initialize":
            error = {
                "code": -32022,
                "message": "Unsupported protocol version",
                "data": {"supported": ["2026-07-28"], "requested": message["params"]["protocolVersion"]},
            }
            await _answer(send, 400, _error(message.get("id"), error))
            return None
        return message


class ErrorBackend(PostFilter):
    """Answers tools/call of `ERROR_TOOL` with a JSON-RPC error of its own, like a backend
    that validates arguments itself; everything else goes to the wrapped app."""

    ERROR_TOOL = "strict"
    ERROR: ClassVar[dict[str, Any]] = {
        "code": -32602,
        "message": "strict: 'level' must be one of low, high",
        "data": {"field": "level"},
    }

    async def on_post(self, scope: Scope, message: dict[str, Any], send: Send) -> dict[str, Any] | None:
        params = message.get("params") or {}
        if message.get("method") == "tools/call" and params.get("name") == self.ERROR_TOOL:
            await _answer(send, 200, _error(message.get("id"), self.ERROR))
            return None
        return message


class EraRecorder(PostFilter):
    """A dual-era backend (any `mcp` 2.x SDK app) that records, per POST, the JSON-RPC method,
    the `MCP-Protocol-Version` it was spoken to in and its session id; with `serve_modern`
    off it answers 2026-07-28 requests -32022 naming the handshake versions, like the same
    backend redeployed on an SDK without that era."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self.seen: list[tuple[str, str | None, str | None]] = []
        self.serve_modern = True

    def versions(self, method: str) -> list[str | None]:
        return [version for m, version, _ in self.seen if m == method]

    def methods(self) -> list[str]:
        return [m for m, _, _ in self.seen]

    async def on_post(self, scope: Scope, message: dict[str, Any], send: Send) -> dict[str, Any] | None:
        version = _header(scope, b"mcp-protocol-version")
        method = str(message.get("method") or "(answer)")
        self.seen.append((method, version, _header(scope, b"mcp-session-id")))
        if version == "2026-07-28" and not self.serve_modern:
            error = {"code": -32022, "message": "Unsupported protocol version", "data": {"supported": ["2025-11-25"]}}
            await _answer(send, 400, _error(message.get("id"), error))
            return None
        return message
