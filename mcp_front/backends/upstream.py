"""Forwards tools/call to a toolkit's upstream MCP server as a raw JSON-RPC POST.

Why not the SDK client: per call it costs ~2 ms of CPU against ~0.05 ms here (see
DESIGN's performance notes). Connections are pooled per process; an upstream that keeps
sessions gets one `initialize` handshake, redone if it forgets the session. A 2026-07-28
client's requests reach a backend that serves 2026-07-28 in that era, without a session
(`modern=True`; docs/adr/0032-speaking-the-clients-era.md).

Sessions and connections belong to one tenant: they are keyed by a scope the caller
names (toolkit and caller org) and by the backend URL and headers (its credential), so
one org's calls never run in a session another org's credential opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from mcp_front.backends import negotiation, streaming
from mcp_front.backends.answer_budget import AnswerOverBudget
from mcp_front.backends.http11 import (
    EgressRefused,
    Http11Client,
    HttpError,
    HttpResponse,
    OpenResponse,
    ResponseTooLarge,
)
from mcp_front.backends.negotiation import Negotiated, NegotiationFailed
from mcp_front.backends.stdio import StdioBackends
from policy_service.toolkits.egress import EgressPolicy
from policy_service.toolkits.stdio_backend import is_stdio

_ACCEPT = "application/json, text/event-stream"
# json.dumps with separators builds an encoder per call; this one is built once (docs/adr/0040).
_compact = json.JSONEncoder(separators=(",", ":")).encode
_MAX_SESSIONS = 4096
_V = TypeVar("_V")
UNREACHABLE = "the toolkit's backend is unreachable"
# A catalogue sync keeps every page of a list in this process until it is sent in one
# SyncTools message (at most 16 MiB, about twice the listed JSON): more could never be
# stored, and a backend that pages on without end would otherwise take the front's memory
# (~35 bytes of Python objects per byte of small JSON objects) from every tenant.
CATALOGUE_MAX_BYTES = 8 * 1024 * 1024
NOT_ALLOWED = "the toolkit's backend address is not allowed by this gateway"


class _CatalogueBudget:
    """The JSON a list's pages have brought so far; UpstreamError past CATALOGUE_MAX_BYTES."""

    def __init__(self, method: str) -> None:
        self._method = method
        self._spent = 0

    def spend(self, page: Any) -> None:
        self._spent += len(_compact(page or []))
        if self._spent > CATALOGUE_MAX_BYTES:
            limit = CATALOGUE_MAX_BYTES // (1024 * 1024)
            raise UpstreamError(f"{self._method} lists more than {limit} MiB: too large a catalogue to sync")


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


class UpstreamRpcError(UpstreamError):
    """The backend answered with a JSON-RPC error: its code, message and data reach the client as they are."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"backend error {code}: {message}", message)
        self.code = code
        self.message = message
        self.data = data


def rpc_error(message: dict[str, Any]) -> UpstreamRpcError:
    """The typed form of a backend's JSON-RPC error object (malformed ones become -32603)."""
    error = message.get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    text = error.get("message")
    return UpstreamRpcError(
        code if isinstance(code, int) and not isinstance(code, bool) else -32603,
        text if isinstance(text, str) else "backend error",
        error.get("data"),
    )


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


class _NoVerdict(Exception):
    """`server/discover` failed: no verdict to remember for the backend."""


def _parse_sse(text: str, request_id: int) -> dict[str, Any] | None:
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in block.split("\n") if line.startswith("data:"))
        if not data:
            continue
        try:
            message = json.loads(data)
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
            continue
        if isinstance(message, dict) and message.get("id") == request_id:
            return message
    return None


class UpstreamPool:
    def __init__(self, max_connections: int = 200, egress: EgressPolicy | None = None) -> None:
        self._http = Http11Client(max_idle_per_origin=max_connections, egress=egress)
        self._sessions: OrderedDict[SessionKey, Negotiated] = OrderedDict()
        self._modern: OrderedDict[SessionKey, bool] = OrderedDict()  # server/discover's verdict per key
        self._locks: dict[SessionKey, asyncio.Lock] = {}
        self._ids = itertools.count(1)
        self._stdio = StdioBackends()  # `stdio:` targets: local processes (docs/adr/0017-stdio-backends.md)
        # Told of every new HTTP session, so a standalone-stream listener can follow it (ADR 0025).
        self.on_session: Callable[[Target, Negotiated], None] | None = None

    async def close(self) -> None:
        await self._http.close()
        await self._stdio.close()

    async def call_tool(
        self,
        url: str,
        headers: dict[str, str],
        name: str,
        arguments: dict[str, Any],
        timeout_seconds: float,
        scope: str = "",
        meta: dict[str, Any] | None = None,
        modern: bool = False,
    ) -> dict[str, Any]:
        """The upstream's `result` object for tools/call, unchanged. `meta` is the client's
        request `_meta` (gateway-internal keys already removed).

        `scope` names the tenant (toolkit and caller org): sessions and connections are
        never shared between scopes. `modern`: the client speaks 2026-07-28, so a backend
        that serves it is spoken to in that era. Raises UpstreamTimeout, or UpstreamError
        for transport failures and JSON-RPC errors.
        """
        target = Target(url, headers, scope)
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        if meta:
            params["_meta"] = meta
        try:
            async with asyncio.timeout(timeout_seconds):
                session, message = await self._exchange(target, "tools/call", params, modern)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"backend did not answer within {timeout_seconds:g} s") from exc
        if message is None:
            raise UpstreamError("backend rejected the session")
        if "error" in message:
            raise rpc_error(message)
        result = message.get("result")
        if not isinstance(result, dict):
            raise UpstreamError("backend answered without a result")
        return negotiation.plain_result(session, result)

    async def list_tools(
        self, url: str, headers: dict[str, str], timeout_seconds: float = 30.0, scope: str = ""
    ) -> list[dict[str, Any]]:
        target = Target(url, headers, scope)
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        budget = _CatalogueBudget("tools/list")
        try:
            async with asyncio.timeout(timeout_seconds):
                session = await self._session(target)
                for _ in range(100):
                    params = {"cursor": cursor} if cursor else {}
                    message = await self._request(target, session, "tools/list", params)
                    if message is None:
                        raise UpstreamError("tools/list failed: the backend rejected the session")
                    if "error" in message:
                        raise rpc_error(message)
                    result = message.get("result") or {}
                    tools.extend(result.get("tools") or [])
                    budget.spend(result.get("tools"))
                    cursor = result.get("nextCursor")
                    if not cursor:
                        break
        except TimeoutError as exc:
            raise UpstreamTimeout(f"backend did not answer within {timeout_seconds:g} s") from exc
        return tools

    async def request(
        self,
        url: str,
        headers: dict[str, str],
        method: str,
        params: dict[str, Any],
        timeout_seconds: float,
        scope: str = "",
        modern: bool = False,
    ) -> dict[str, Any]:
        """Any request (resources/read, prompts/get, ...) in the tenant's session, or in
        2026-07-28 when `modern` and the backend serves it; returns the JSON-RPC message, so a
        backend error keeps its code. Raises UpstreamTimeout/UpstreamError for transport
        failures only."""
        target = Target(url, headers, scope)
        try:
            async with asyncio.timeout(timeout_seconds):
                session, message = await self._exchange(target, method, params, modern)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"backend did not answer within {timeout_seconds:g} s") from exc
        if message is None:
            raise UpstreamError("backend rejected the session")
        result = message.get("result")
        if isinstance(result, dict) and result.get("resultType") == "complete":
            return {**message, "result": negotiation.plain_result(session, result)}
        return message

    async def _exchange(
        self, target: Target, method: str, params: dict[str, Any], modern: bool
    ) -> tuple[Negotiated, dict[str, Any] | None]:
        """One request on the session this client's era gets; a backend that forgot our
        session or our era (None from `_request`) is asked again, once."""
        session = await self._session(target, modern)
        message = await self._request(target, session, method, params)
        if message is None:
            self.forget_session(target)
            session = await self._session(target, modern)
            message = await self._request(target, session, method, params)
        return session, message

    async def list_all(
        self, url: str, headers: dict[str, str], method: str, key: str, timeout_seconds: float = 30.0
    ) -> list[dict[str, Any]]:
        """Every page of a list method (e.g. resources/list → "resources"); [] when the backend
        does not offer the method (-32601), since a backend need not serve every kind."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        budget = _CatalogueBudget(method)
        for _ in range(100):
            message = await self.request(url, headers, method, {"cursor": cursor} if cursor else {}, timeout_seconds)
            if "error" in message:
                if (message["error"] or {}).get("code") == -32601:
                    return []
                raise UpstreamError(f"{method} failed: {message['error']}")
            result = message.get("result") or {}
            items.extend(i for i in result.get(key) or [] if isinstance(i, dict))
            budget.spend(result.get(key))
            cursor = result.get("nextCursor")
            if not cursor:
                break
        return items

    async def _session(self, target: Target, modern: bool = False) -> Negotiated:
        """The session a request travels in: 2026-07-28 for a `modern` client's request when
        the backend serves it, else the tenant's handshake session. stdio processes keep
        the handshake whatever the client speaks (ADR 0032)."""
        if is_stdio(target.url):
            return await self._stdio.session(target)
        try:
            if modern and await self._serves_modern(target):
                return negotiation.MODERN_SESSION
            return await self._once(self._sessions, target, self._initialize, self._opened)
        except AnswerOverBudget as exc:  # refused before the request was sent: it did not run (ADR 50)
            raise UpstreamError(f"handshake: answer budget: {exc}", f"the handshake failed: {exc}") from None

    def _opened(self, target: Target, session: Negotiated) -> None:
        """A new session, told to `on_session` once remembered (so it is the current one)."""
        if self.on_session is not None:
            self.on_session(target, session)

    def _learned(self, target: Target, serves: bool) -> None:
        """A backend that serves 2026-07-28 is told to `on_session` as a 2026-07-28 session
        (its listen can be followed, ADR 0053) once the verdict is remembered."""
        if serves:
            self._opened(target, negotiation.MODERN_SESSION)

    async def _serves_modern(self, target: Target) -> bool:
        """Whether the backend serves 2026-07-28: asked once per upstream key (`server/discover`)."""
        try:
            return await self._once(self._modern, target, self._discover, self._learned)
        except _NoVerdict:  # a failing backend: the handshake now, the question again next time
            return False

    async def _discover(self, target: Target) -> bool:
        request_id = next(self._ids)
        body = negotiation.discover_request(request_id)
        response = await self._post(target, body, negotiation.request_headers(negotiation.MODERN_SESSION, body))
        verdict = negotiation.serves_modern(response.status, _message(response, request_id))
        if verdict is None:
            raise _NoVerdict
        return verdict

    async def _once(
        self,
        memory: OrderedDict[SessionKey, _V],
        target: Target,
        make: Callable[[Target], Awaitable[_V]],
        told: Callable[[Target, _V], None],
    ) -> _V:
        """The remembered value for the target's key, made at most once at a time: concurrent
        first callers wait on the key's lock and find what the first one made; a new value is
        `told` once remembered. When `make` raises, nothing is remembered and the next caller
        makes it again."""
        key = target.key
        value = memory.get(key)
        if value is not None:
            return value
        async with self._locks.setdefault(key, asyncio.Lock()):
            value = memory.get(key)
            if value is None:
                value = await make(target)
                self._remember(memory, key, value)
                told(target, value)
        return value

    def _remember(self, memory: OrderedDict[SessionKey, Any], key: SessionKey, value: Any) -> None:
        """Bounded memories: the oldest keys go first, and a key's lock with its last memory."""
        memory[key] = value
        while len(memory) > _MAX_SESSIONS:
            old = memory.popitem(last=False)[0]
            if old not in self._sessions and old not in self._modern:
                self._locks.pop(old, None)

    async def _initialize(self, target: Target) -> Negotiated:
        """Opens an upstream session and remembers the version the backend negotiated."""
        request_id = next(self._ids)
        response = await self._post(target, negotiation.initialize_request(request_id), {})
        session_id = response.headers.get("mcp-session-id")
        try:
            version = negotiation.negotiated_version(_message(response, request_id))
        except NegotiationFailed as exc:
            public = "the toolkit's backend refused the MCP handshake"
            raise UpstreamError(f"{exc} (HTTP {response.status})", public) from None
        session = Negotiated(session_id, version)
        if not session.modern:
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            await self._post(target, note, negotiation.request_headers(session, note))
        return session

    async def _request(
        self, target: Target, session: Negotiated, method: str, params: dict[str, Any]
    ) -> dict[str, Any] | None:
        if is_stdio(target.url):
            return await self._stdio.request(target, method, params)
        if session.modern and method in negotiation.LISTEN_FILTERED:
            # That era has no such request: the hub's listen filter carries it (ADR 0048).
            return {"jsonrpc": "2.0", "id": None, "result": {}}
        request_id = next(self._ids)
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": negotiation.envelope(session, params)}
        response = await self._post(target, body, negotiation.request_headers(session, body))
        if response.status == 404 and session.session_id:
            return None
        message = _message(response, request_id)
        if not isinstance(message, dict):
            raise UpstreamError(f"backend answered HTTP {response.status} without a JSON-RPC message")
        if negotiation.refused_version(session, message):
            return None
        return message

    async def _post(self, target: Target, body: dict[str, Any], protocol: dict[str, str]) -> HttpResponse:
        h = {"content-type": "application/json", "accept": _ACCEPT, **protocol, **target.headers}
        payload = _compact(body).encode()
        with _transport_errors():
            return await self._http.post(target.url, h, payload, target.scope)

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
        modern: bool = False,
    ) -> dict[str, Any]:
        """Like `call_tool`, with the backend's in-call messages handed to `relay`."""
        target = Target(url, headers, scope)
        session: Negotiated | None = None
        try:
            async with asyncio.timeout(timeout_seconds):
                if is_stdio(url):
                    message: dict[str, Any] | None = await self._stdio.request(target, "tools/call", params, relay)
                else:
                    session, message = await streaming.relayed_call(self, target, params, relay, modern)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"backend did not answer within {timeout_seconds:g} s") from exc
        if message is None:
            raise UpstreamError("backend rejected the session")
        if "error" in message:
            raise rpc_error(message)
        result = message.get("result")
        if not isinstance(result, dict):
            raise UpstreamError("backend answered without a result")
        return negotiation.plain_result(session, result) if session is not None else result

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

    async def session_for(self, target: Target, modern: bool = False) -> Negotiated:
        return await self._session(target, modern)

    def forget_session(self, target: Target) -> None:
        """The backend forgot our session or no longer serves our era (redeployed): learn both again."""
        self._sessions.pop(target.key, None)
        self._modern.pop(target.key, None)

    @property
    def stdio(self) -> StdioBackends:
        return self._stdio

    def current_session(self, target: Target) -> Negotiated | None:
        return self._sessions.get(target.key)

    def follows(self, target: Target, session: Negotiated) -> bool:
        """Whether `session` is still a way the front speaks to this backend: the tenant's
        handshake session, or 2026-07-28 on a backend `server/discover` said serves it."""
        if session == negotiation.MODERN_SESSION and self._modern.get(target.key):
            return True
        return self._sessions.get(target.key) == session

    def dual_era(self, target: Target) -> bool:
        """Whether the tenant speaks both eras to this backend: an initialize-era handshake
        session beside 2026-07-28 requests (each era then has its own stream, ADR 0053)."""
        session = self._sessions.get(target.key)
        return session is not None and not session.modern and bool(self._modern.get(target.key))

    def knows_era(self, target: Target) -> bool:
        """Whether `server/discover` has answered for this backend (either way)."""
        return target.key in self._modern

    async def serves_modern(self, target: Target) -> bool:
        return await self._serves_modern(target)

    def sessions_in(self, scope: str) -> list[tuple[Target, Negotiated]]:
        """The open HTTP sessions of one tenant scope (a standalone stream may follow them)."""
        return [
            (Target(url, dict(headers), s), session)
            for (s, url, headers), session in list(self._sessions.items())
            if s == scope
        ]

    def targets_in(self, scope: str) -> list[Target]:
        """The scope's HTTP backends the tenant holds a handshake session on, or that
        `server/discover` said serve 2026-07-28 (a standalone stream may follow them)."""
        keys = dict.fromkeys(key for key in list(self._sessions) if key[0] == scope)
        keys.update(dict.fromkeys(key for key, serves in list(self._modern.items()) if key[0] == scope and serves))
        return [Target(url, dict(headers), s) for s, url, headers in keys]

    async def open_stream(self, target: Target, session: Negotiated, uris: list[str]) -> OpenResponse:
        """The backend's stream of what belongs to no request, for our session: a GET on the
        initialize era's session (ADR 0025), a `subscriptions/listen` for `uris` and every list
        change on 2026-07-28 (ADR 0048)."""
        if session.modern:
            return await self.open(target, session, negotiation.listen_request(next(self._ids), uris))
        headers = {"accept": "text/event-stream", **negotiation.request_headers(session, {}), **target.headers}
        with _transport_errors():
            return await self._http.open(target.url, headers, b"", target.scope, method="GET")

    def next_id(self) -> int:
        return next(self._ids)

    async def open(self, target: Target, session: Negotiated, body: dict[str, Any]) -> OpenResponse:
        """POST and return at the response head, so an SSE body can be followed as it arrives."""
        payload = _compact(body).encode()
        with _transport_errors():
            return await self._http.open(target.url, self._headers(target, session, body), payload, target.scope)

    async def post_message(self, target: Target, session: Negotiated, body: dict[str, Any]) -> None:
        """A notification or a reply to a backend request: the backend answers 202, nothing to read."""
        if is_stdio(target.url):
            return await self._stdio.notify(target, body)
        response = await self._post(target, body, negotiation.request_headers(session, body))
        if response.status >= 400:
            raise UpstreamError(f"backend refused a relayed message: HTTP {response.status}")

    @staticmethod
    def _headers(target: Target, session: Negotiated, body: dict[str, Any]) -> dict[str, str]:
        """The same headers `_post` sends: the negotiated version (and session) for this backend."""
        return {
            "content-type": "application/json",
            "accept": _ACCEPT,
            **negotiation.request_headers(session, body),
            **target.headers,
        }


@contextlib.contextmanager
def _transport_errors() -> Iterator[None]:
    """The one mapping of transport failures to UpstreamError (the public text names no backend)."""
    try:
        yield
    except EgressRefused as exc:
        raise UpstreamError(f"backend not allowed: {exc}", NOT_ALLOWED) from exc
    except ResponseTooLarge as exc:  # its message names no backend: the client may read it
        raise UpstreamError(str(exc), str(exc)) from exc
    except HttpError as exc:
        raise UpstreamError(f"backend unreachable: {exc}", UNREACHABLE) from exc


def _message(response: HttpResponse, request_id: int) -> Any:
    """The JSON-RPC message in a JSON or SSE response body (None when there is none)."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return _parse_sse(response.body.decode("utf-8", "replace"), request_id)
    try:
        return json.loads(response.body)
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
        return None
