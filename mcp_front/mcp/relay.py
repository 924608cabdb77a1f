"""The client side of a relayed call: what the backend sends during a tools/call reaches
the client, and the client's answers reach the backend (docs/adr/0011-relaying-streams.md).

- `ClientChannel` owns one HTTP response. It stays a plain JSON response until the first
  relayed message; then it becomes an SSE stream, and the SDK's own final JSON-RPC
  response (validated and shaped by the SDK as always) becomes its last event.
- `RelayHub` is per front process: answers to relayed requests (a POST from the client)
  and `notifications/cancelled` are matched to the call that waits for them, only for
  the credential that made the call. An answer this process cannot match is handed to
  `forward` (Redis, `relay_routing.py`, docs/adr/0025) for the replica holding the call.
- `ClientRelay` is one call's `CallRelay`: it filters logs by the client's level, relays
  progress, and turns backend requests into requests to the client.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Message, Receive, Send

from mcp_front.backends.negotiation import CLIENT_CAPABILITIES_META_KEY, LOG_LEVEL_META_KEY

CHANNEL_KEY = "monomcp.channel"
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
METHOD_NOT_FOUND = -32601
_MAX_REMEMBERED_LEVELS = 10_000
SSE_HEADERS = [  # a stream's response head, here and on the standalone stream
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]


def sse_event(message: dict[str, Any] | bytes) -> bytes:
    data = message if isinstance(message, bytes) else json.dumps(message, separators=(",", ":")).encode()
    return b"event: message\ndata: " + data + b"\n\n"


class ClientChannel:
    """One client HTTP response that can switch from JSON to SSE mid-request."""

    def __init__(self, send: Send, receive: Receive) -> None:
        self._send, self._receive = send, receive
        self.streaming = False
        self._final = bytearray()
        self._lock = asyncio.Lock()

    async def write(self, message: dict[str, Any]) -> None:
        async with self._lock:
            if not self.streaming:
                self.streaming = True
                await self._send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            await self._send({"type": "http.response.body", "body": sse_event(message), "more_body": True})

    async def send(self, message: Message) -> None:
        """The `send` the SDK writes its response to: passed through unless we already stream."""
        if not self.streaming:
            await self._send(message)
            return
        if message["type"] == "http.response.start":
            return  # the SSE head is already out
        if message["type"] == "http.response.body":
            self._final.extend(message.get("body", b""))
            if not message.get("more_body", False):
                async with self._lock:
                    await self._send({"type": "http.response.body", "body": sse_event(bytes(self._final))})

    async def disconnected(self) -> None:
        """Returns once the client has gone away."""
        while (await self._receive())["type"] != "http.disconnect":
            pass


def owner_digest(owner: str) -> str:
    """What identifies a credential between replicas (the credential itself never travels)."""
    return hashlib.sha256(owner.encode()).hexdigest()


@dataclass
class _Waiter:
    digest: str
    future: asyncio.Future[dict[str, Any]]


# Publishes a message this process could not match, for the replica that holds the call
# (`relay_routing.SharedRelays`); None when the deployment shares no store.
Forward = Callable[[str, str, dict[str, Any]], Awaitable[None]]


class RelayHub:
    """Per process: pending client answers, cancellable calls, and each client's log level."""

    def __init__(self) -> None:
        self._answers: dict[str, _Waiter] = {}
        self._calls: dict[tuple[str, str], Callable[[], None]] = {}
        self._levels: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.forward: Forward | None = None

    def expect_answer(self, owner: str) -> tuple[str, asyncio.Future[dict[str, Any]]]:
        request_id = f"monomcp-{uuid.uuid4().hex}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[request_id] = _Waiter(owner_digest(owner), future)
        future.add_done_callback(lambda _: self._answers.pop(request_id, None))
        return request_id, future

    def deliver(self, owner: str, message: dict[str, Any]) -> bool:
        """A client's JSON-RPC response: True if it answered a request this process relayed."""
        return self.deliver_digest(owner_digest(owner), message)

    def deliver_digest(self, digest: str, message: dict[str, Any]) -> bool:
        request_id = message.get("id")
        waiter = self._answers.get(request_id) if isinstance(request_id, str) else None
        if waiter is None or not hmac.compare_digest(waiter.digest, digest) or waiter.future.done():
            return False
        waiter.future.set_result(message)
        return True

    def register_call(self, owner: str, client_request_id: Any, cancel: Callable[[], None]) -> Callable[[], None]:
        key = (owner_digest(owner), json.dumps(client_request_id))
        self._calls[key] = cancel

        def unregister() -> None:
            self._calls.pop(key, None)

        return unregister

    def cancel(self, owner: str, client_request_id: Any) -> bool:
        return self.cancel_digest(owner_digest(owner), client_request_id)

    def cancel_digest(self, digest: str, client_request_id: Any) -> bool:
        cancel = self._calls.get((digest, json.dumps(client_request_id)))
        if cancel is None:
            return False
        cancel()
        return True

    def set_level(self, owner: str, toolkit: str, level: str) -> None:
        self._levels[(owner, toolkit)] = level
        self._levels.move_to_end((owner, toolkit))
        while len(self._levels) > _MAX_REMEMBERED_LEVELS:
            self._levels.popitem(last=False)

    def level(self, owner: str, toolkit: str) -> str | None:
        return self._levels.get((owner, toolkit))


def levels_from(level: str | None) -> frozenset[str]:
    if level not in LOG_LEVELS:
        return frozenset()
    return frozenset(LOG_LEVELS[LOG_LEVELS.index(level) :])


@dataclass
class ClientRelay:
    """One call's relay (a `mcp_front.backends.streaming.CallRelay`)."""

    channel: ClientChannel
    hub: RelayHub
    owner: str
    client_request_id: Any
    progress_token: str | int | None
    log_levels: frozenset[str]  # notifications/message levels the client accepts
    can_ask: bool  # initialize era: server-to-client requests may travel on this response
    backend_log_level: str | None = None  # forwarded to the backend before the call (setLevel)
    # 2026-07-28 client: its call may travel in that era, carrying its own log level and capabilities
    modern: bool = False
    era_meta: dict[str, Any] = field(default_factory=dict)
    cancel_requested: bool = False
    relayed: int = 0

    async def notify(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        params = message.get("params") or {}
        if method == "notifications/progress":
            if self.progress_token is None:
                return
            message = {**message, "params": {**params, "progressToken": self.progress_token}}
        elif method == "notifications/message":
            if params.get("level") not in self.log_levels:
                return
        else:
            return  # list changes and the like belong to the backend session, not this call
        self.relayed += 1
        await self.channel.write(message)

    async def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        method = message.get("method")
        if method == "ping":
            return {"result": {}}
        if not self.can_ask:
            return {
                "error": {
                    "code": METHOD_NOT_FOUND,
                    "message": f"{method} is not available: the client cannot take requests during this call",
                }
            }
        request_id, answer = self.hub.expect_answer(self.owner)
        ask = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": message.get("params")}
        await self.channel.write(ask)
        self.relayed += 1
        reply = await answer
        if "error" in reply:
            return {"error": reply["error"]}
        return {"result": reply.get("result", {})}


async def _watch_disconnect(channel: ClientChannel, cancel: Callable[[], None]) -> None:
    await channel.disconnected()
    cancel()


async def guard(relay: ClientRelay, work: Awaitable[dict[str, Any]]) -> dict[str, Any] | None:
    """Runs `work` in this task until it ends, or until the client disconnects or sends
    `notifications/cancelled` for the call: then `work` is cancelled and None returned.

    One watcher task per call; a cancellation from anywhere else propagates unchanged."""
    current = asyncio.current_task()
    if current is None:
        raise RuntimeError("guard runs inside a task")

    def cancel() -> None:
        if not relay.cancel_requested:
            relay.cancel_requested = True
            current.cancel()

    watcher = asyncio.get_running_loop().create_task(_watch_disconnect(relay.channel, cancel))
    unregister = relay.hub.register_call(relay.owner, relay.client_request_id, cancel)
    try:
        return await work
    except asyncio.CancelledError:
        if not relay.cancel_requested or current.cancelling() > 1:
            raise
        current.uncancel()
        return None
    finally:
        watcher.cancel()
        unregister()


def relay_for(ctx: Any, owner: str, toolkit: str, hub: RelayHub, modern: bool) -> ClientRelay | None:
    """The relay for a tools/call handled by the SDK (`ctx` is its request context)."""
    request = getattr(ctx, "request", None)
    scope = getattr(request, "scope", None) or {}
    channel = scope.get(CHANNEL_KEY)
    if not isinstance(channel, ClientChannel):
        return None
    return relay_from(channel, (ctx.params or {}).get("_meta"), ctx.request_id, owner, toolkit, hub, modern)


def relay_from(
    channel: ClientChannel, meta: Any, request_id: Any, owner: str, toolkit: str, hub: RelayHub, modern: bool
) -> ClientRelay:
    """One call's relay from its request `_meta` (the lean path and the SDK path alike)."""
    meta = dict(meta or {})
    token = meta.get("progressToken")
    if modern:
        levels = levels_from(meta.get(LOG_LEVEL_META_KEY))
        backend_level = None
    else:
        backend_level = hub.level(owner, toolkit)
        levels = levels_from(backend_level) if backend_level else frozenset(LOG_LEVELS)
    return ClientRelay(
        channel=channel,
        hub=hub,
        owner=owner,
        client_request_id=request_id,
        progress_token=token if isinstance(token, str | int) else None,
        log_levels=levels,
        can_ask=not modern,
        backend_log_level=backend_level,
        modern=modern,
        era_meta=_era_meta(meta) if modern else {},
    )


def _era_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The 2026-07-28 client's own log level and capabilities, when well formed, for its backend."""
    level, capabilities = meta.get(LOG_LEVEL_META_KEY), meta.get(CLIENT_CAPABILITIES_META_KEY)
    era: dict[str, Any] = {LOG_LEVEL_META_KEY: level} if level in LOG_LEVELS else {}
    if isinstance(capabilities, dict):
        era[CLIENT_CAPABILITIES_META_KEY] = capabilities
    return era


async def route_client_message(
    hub: RelayHub, owner: str, body: bytes, scope: Any, receive: Receive, send: Send
) -> bool:
    """Handles a POST that answers a relayed request or cancels a relayed call (202, like the SDK).

    Cheap for everything else: a byte test before any parse, so the hot path pays nothing.
    """
    if b"monomcp-" not in body and b"notifications/cancelled" not in body:
        return False
    try:
        message = json.loads(body)
    except ValueError:
        return False
    if not isinstance(message, dict):
        return False
    if "method" not in message and ("result" in message or "error" in message):
        kind = "answer"
        handled = hub.deliver(owner, message)
        ours = str(message.get("id")).startswith("monomcp-")
    elif message.get("method") == "notifications/cancelled" and "id" not in message:
        kind = "cancel"
        handled = hub.cancel(owner, (message.get("params") or {}).get("requestId"))
        ours = True
    else:
        return False
    if not handled:
        if hub.forward is None or not ours:
            return False
        await hub.forward(kind, owner_digest(owner), message)  # the replica holding the call takes it
    await send({"type": "http.response.start", "status": 202, "headers": []})
    await send({"type": "http.response.body", "body": b""})
    return True
