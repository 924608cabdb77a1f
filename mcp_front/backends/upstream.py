"""Forwards tools/call to a toolkit's upstream MCP server as a raw JSON-RPC POST.

Why not the SDK client: per call it costs ~2 ms of CPU against ~0.05 ms here (see
DESIGN's performance notes). Connections are pooled per process; an upstream that keeps
sessions gets one `initialize` handshake, redone if it forgets the session.

Sessions and connections belong to one tenant: they are keyed by a scope the caller
names (toolkit and caller org) and by the backend URL and headers (its credential), so
one org's calls never run in a session another org's credential opened.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from mcp_front.backends import streaming
from mcp_front.backends.http11 import EgressRefused, Http11Client, HttpError, HttpResponse, OpenResponse
from policy_service.toolkits.egress import EgressPolicy

PROTOCOL_VERSION = "2025-11-25"
# What the gateway offers a backend on behalf of its clients: requests for a capability a
# given client lacks are answered with an error by the relay (mcp_front/mcp/relay.py).
RELAYED_CLIENT_CAPABILITIES: dict[str, Any] = {"sampling": {}, "elicitation": {"form": {}, "url": {}}}
_ACCEPT = "application/json, text/event-stream"
_MAX_SESSIONS = 4096
UNREACHABLE = "the toolkit's backend is unreachable"
NOT_ALLOWED = "the toolkit's backend address is not allowed by this gateway"


class UpstreamError(Exception):
    """The backend could not be reached or answered with something that is not MCP.

    `str(exc)` is the detail for the audit log (it may name the backend's address);
    `public` is what a client may be told.
    """

    def __init__(self, detail: str, public: str | None = None) -> None:
        super().__init__(detail)
        self.public = public if public is not None else detail


class UpstreamTimeout(UpstreamError):
    pass


SessionKey = tuple[str, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class Target:
    """One tenant's view of a backend: its URL and headers, and whose pool carries the calls."""

    url: str
    headers: dict[str, str]
    scope: str = ""

    @property
    def key(self) -> SessionKey:
        """One upstream session per (tenant scope, backend URL, backend headers/credential)."""
        return (self.scope, self.url, tuple(sorted(self.headers.items())))


@dataclass
class _Session:
    session_id: str | None


def _parse_sse(text: str, request_id: int) -> dict[str, Any] | None:
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in block.split("\n") if line.startswith("data:"))
        if not data:
            continue
        try:
            message = json.loads(data)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("id") == request_id:
            return message
    return None


class UpstreamPool:
    def __init__(self, max_connections: int = 200, egress: EgressPolicy | None = None) -> None:
        self._http = Http11Client(max_idle_per_origin=max_connections, egress=egress)
        self._sessions: OrderedDict[SessionKey, _Session] = OrderedDict()
        self._locks: dict[SessionKey, asyncio.Lock] = {}
        self._ids = itertools.count(1)

    async def close(self) -> None:
        await self._http.close()

    async def call_tool(
        self,
        url: str,
        headers: dict[str, str],
        name: str,
        arguments: dict[str, Any],
        timeout_seconds: float,
        scope: str = "",
    ) -> dict[str, Any]:
        """The upstream's `result` object for tools/call, unchanged.

        `scope` names the tenant (toolkit and caller org): sessions and connections are
        never shared between scopes. Raises UpstreamTimeout, or UpstreamError for
        transport failures and JSON-RPC errors.
        """
        target = Target(url, headers, scope)
        params = {"name": name, "arguments": arguments}
        try:
            async with asyncio.timeout(timeout_seconds):
                session = await self._session(target)
                message = await self._request(target, session, "tools/call", params)
                if message is None:  # upstream forgot our session: handshake again, once
                    self._sessions.pop(target.key, None)
                    session = await self._session(target)
                    message = await self._request(target, session, "tools/call", params)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"backend did not answer within {timeout_seconds:g} s") from exc
        if message is None:
            raise UpstreamError("backend rejected the session")
        if "error" in message:
            error = message["error"] or {}
            raise UpstreamError(f"backend error {error.get('code')}: {error.get('message')}")
        result = message.get("result")
        if not isinstance(result, dict):
            raise UpstreamError("backend answered without a result")
        return result

    async def list_tools(
        self, url: str, headers: dict[str, str], timeout_seconds: float = 30.0, scope: str = ""
    ) -> list[dict[str, Any]]:
        target = Target(url, headers, scope)
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            async with asyncio.timeout(timeout_seconds):
                session = await self._session(target)
                for _ in range(100):
                    params = {"cursor": cursor} if cursor else {}
                    message = await self._request(target, session, "tools/list", params)
                    if message is None or "error" in message:
                        raise UpstreamError(f"tools/list failed: {message and message.get('error')}")
                    result = message.get("result") or {}
                    tools.extend(result.get("tools") or [])
                    cursor = result.get("nextCursor")
                    if not cursor:
                        break
        except TimeoutError as exc:
            raise UpstreamTimeout(f"backend did not answer within {timeout_seconds:g} s") from exc
        return tools

    async def _session(self, target: Target) -> _Session:
        key = target.key
        session = self._sessions.get(key)
        if session is not None:
            return session
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            session = self._sessions.get(key)
            if session is None:
                session = await self._initialize(target)
                self._sessions[key] = session
                while len(self._sessions) > _MAX_SESSIONS:
                    self._locks.pop(self._sessions.popitem(last=False)[0], None)
        return session

    async def _initialize(self, target: Target) -> _Session:
        request_id = next(self._ids)
        body = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": RELAYED_CLIENT_CAPABILITIES,
                "clientInfo": {"name": "monomcp-gateway", "version": "0.1.0"},
            },
        }
        response = await self._post(target, None, body)
        if response.status >= 400:
            raise UpstreamError(f"backend refused initialize: HTTP {response.status}")
        session_id = response.headers.get("mcp-session-id")
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        await self._post(target, session_id, note)
        return _Session(session_id)

    async def _request(
        self, target: Target, session: _Session, method: str, params: dict[str, Any]
    ) -> dict[str, Any] | None:
        request_id = next(self._ids)
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        response = await self._post(target, session.session_id, body)
        if response.status == 404 and session.session_id:
            return None
        content_type = response.headers.get("content-type", "")
        message: Any
        if content_type.startswith("text/event-stream"):
            message = _parse_sse(response.body.decode("utf-8", "replace"), request_id)
        else:
            try:
                message = json.loads(response.body)
            except ValueError:
                message = None
        if not isinstance(message, dict):
            raise UpstreamError(f"backend answered HTTP {response.status} without a JSON-RPC message")
        return message

    async def _post(self, target: Target, session_id: str | None, body: dict[str, Any]) -> HttpResponse:
        h = {
            "content-type": "application/json",
            "accept": _ACCEPT,
            "mcp-protocol-version": PROTOCOL_VERSION,
            **target.headers,
        }
        if session_id:
            h["mcp-session-id"] = session_id
        payload = json.dumps(body, separators=(",", ":")).encode()
        try:
            return await self._http.post(target.url, h, payload, target.scope)
        except EgressRefused as exc:
            raise UpstreamError(f"backend not allowed: {exc}", NOT_ALLOWED) from exc
        except HttpError as exc:
            raise UpstreamError(f"backend unreachable: {exc}", UNREACHABLE) from exc

    # The call path with a relay (mcp_front/backends/streaming.py): SSE answers stream
    # through, progress and logs are relayed, backend requests are answered by the client.

    async def relay_call(
        self,
        url: str,
        headers: dict[str, str],
        params: dict[str, Any],
        timeout_seconds: float,
        scope: str,
        relay: streaming.CallRelay,
    ) -> dict[str, Any]:
        """Like `call_tool`, with the backend's in-call messages handed to `relay`."""
        target = Target(url, headers, scope)
        try:
            async with asyncio.timeout(timeout_seconds):
                message = await streaming.relayed_call(self, target, params, relay)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"backend did not answer within {timeout_seconds:g} s") from exc
        if message is None:
            raise UpstreamError("backend rejected the session")
        if "error" in message:
            error = message["error"] or {}
            raise UpstreamError(f"backend error {error.get('code')}: {error.get('message')}")
        result = message.get("result")
        if not isinstance(result, dict):
            raise UpstreamError("backend answered without a result")
        return result

    async def forward(
        self, url: str, headers: dict[str, str], scope: str, message: dict[str, Any], timeout_seconds: float
    ) -> dict[str, Any] | None:
        """One request (or notification, answered None) on the tenant's session, e.g. logging/setLevel."""
        target = Target(url, headers, scope)
        try:
            async with asyncio.timeout(timeout_seconds):
                session = await self._session(target)
                if "id" not in message:
                    await self.post_message(target, session, message)
                    return None
                return await self._request(target, session, message["method"], message.get("params") or {})
        except TimeoutError as exc:
            raise UpstreamTimeout(f"backend did not answer within {timeout_seconds:g} s") from exc

    async def session_for(self, target: Target) -> _Session:
        return await self._session(target)

    def forget_session(self, target: Target) -> None:
        self._sessions.pop(target.key, None)

    def next_id(self) -> int:
        return next(self._ids)

    async def open(self, target: Target, session: _Session, body: dict[str, Any]) -> OpenResponse:
        """POST and return at the response head, so an SSE body can be followed as it arrives."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        try:
            return await self._http.open(target.url, self._headers(target, session.session_id), payload, target.scope)
        except EgressRefused as exc:
            raise UpstreamError(f"backend not allowed: {exc}", NOT_ALLOWED) from exc
        except HttpError as exc:
            raise UpstreamError(f"backend unreachable: {exc}", UNREACHABLE) from exc

    async def post_message(self, target: Target, session: _Session, body: dict[str, Any]) -> None:
        """A notification or a reply to a backend request: the backend answers 202, nothing to read."""
        response = await self._post(target, session.session_id, body)
        if response.status >= 400:
            raise UpstreamError(f"backend refused a relayed message: HTTP {response.status}")

    @staticmethod
    def _headers(target: Target, session_id: str | None) -> dict[str, str]:
        h = {
            "content-type": "application/json",
            "accept": _ACCEPT,
            "mcp-protocol-version": PROTOCOL_VERSION,
            **target.headers,
        }
        if session_id:
            h["mcp-session-id"] = session_id
        return h
