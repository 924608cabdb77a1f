"""The HTTP/1.1 server protocol the front runs under: uvicorn's httptools protocol with the
limits it lacks. Headers are capped while they stream in (431, before a huge header is
buffered or reaches the app), a request must finish its headers within a deadline, and a
connection whose body is still arriving after its response was sent is closed — so slow or
endless senders (slowloris) cannot hold connections open.

Writes made in one event-loop turn leave in one send: uvicorn writes a response's head and
its body separately, and on loopback each send costs ~50 µs of kernel time in the sender
(docs/adr/0023-front-cpu-per-call.md).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from policy_service.config import Settings


def _canned(status: str, message: str) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}).encode()
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return head.encode() + b"connection: close\r\n\r\n" + body


class CoalescingTransport:
    """The connection's transport, with the writes of one loop turn joined into one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(chunk) for chunk in self._pending)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    max_header_bytes = 16_384
    header_timeout_seconds = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self._header_bytes = 0
        self._in_headers = True
        self._header_timer: asyncio.TimerHandle | None = None
        self._keep_alive_held: Any = None  # the cycle whose keep-alive waits for its body
        self._shutting_down = False
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_seconds, self._header_deadline)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _refuse(self, canned: bytes) -> None:
        self._disarm_header_timer()
        if not self.transport.is_closing():
            self.transport.write(canned)
            self.transport.close()

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self._in_headers and (self.cycle is None or self.cycle.response_complete):
            self._refuse(_canned("408 Request Timeout", "request headers not received in time"))

    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if not self._in_headers:
            return
        if self._header_bytes > self.max_header_bytes:
            message = f"request headers exceed {self.max_header_bytes} bytes"
            self._refuse(_canned("431 Request Header Fields Too Large", message))
            return
        # Armed only when the headers did not all arrive in this chunk: a request whose head
        # comes in one segment (nearly all) costs no timer (docs/adr/0033).
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._disarm_header_timer()
        super().on_headers_complete()
        # Until the whole body is in, a response would leave it unread and the connection is
        # closed after it (`on_response_complete`): the response must say so (`Connection:
        # close`, RFC 9112 §9.6), or the client sends its next request into a reset. Restored
        # when the body completes before the response starts (nearly always: it came with the
        # headers, or the app read it).
        cycle = self.cycle
        if cycle is not None and cycle.keep_alive:
            cycle.keep_alive = False
            self._keep_alive_held = cycle

    def on_message_complete(self) -> None:
        super().on_message_complete()
        cycle = self.cycle
        if cycle is not None and self._keep_alive_held is cycle:
            self._keep_alive_held = None
            if not cycle.response_started and not self._shutting_down:
                cycle.keep_alive = True

    def shutdown(self) -> None:
        self._shutting_down = True
        super().shutdown()

    def on_response_complete(self) -> None:
        unread_body = self.cycle is not None and self.cycle.more_body
        super().on_response_complete()
        if unread_body and not self.transport.is_closing():
            # Refused early (401, 413, 429…) while the body still streams in: stop reading it.
            self.transport.close()
            return
        self._in_headers = True
        self._header_bytes = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)


def guarded_protocol(max_header_bytes: int, header_timeout_seconds: float) -> type[GuardedHttpToolsProtocol]:
    """uvicorn instantiates the protocol class itself, so the limits travel as class attributes."""
    attributes = {"max_header_bytes": max_header_bytes, "header_timeout_seconds": header_timeout_seconds}
    return type("FrontHttpProtocol", (GuardedHttpToolsProtocol,), attributes)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options for the front, shared by `monomcp serve front` and the tests."""
    return {
        "http": guarded_protocol(settings.max_header_bytes, settings.header_timeout_seconds),
        "access_log": False,  # RequestLogMiddleware writes one structured line per request
        "lifespan": "on",
        "timeout_keep_alive": 5,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
