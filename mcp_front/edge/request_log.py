"""The outermost layer: a request id on every response, one structured log line per
request (caller-controlled text escaped so it cannot forge log lines), 431 for headers past
the limit and 400 for a repeated decision header, on every path, before any routing. The
server protocol (`protocol.py`) stops oversized headers while they stream in; the check here
catches the rest. One layer, not two: every layer is a frame each await of the request passes
through (docs/adr/0033)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from operator import itemgetter

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_front.edge.request import request_id_of
from mcp_front.edge.responses import header_too_large, repeated_header
from mcp_front.edge.text import log_safe
from mcp_front.observability.metrics import FrontMetrics

log = logging.getLogger("monomcp.front")

# Headers the gateway decides on (routing, identity, protocol, sessions, CSRF, framing): each
# may appear once. Two copies let two readers of one request (our router, the SDK, a proxy)
# disagree; RFC 9112 §3.2 asks for a 400 on a repeated Host. Every `mcp-*` header counts too.
SINGLE_HEADERS = frozenset(
    {
        b"host",
        b"authorization",
        b"origin",
        b"cookie",
        b"content-type",
        b"content-length",
        b"transfer-encoding",
        b"x-request-id",
        b"x-csrf-token",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        b"last-event-id",
    }
)


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, metrics: FrontMetrics | None = None, max_header_bytes: int | None = None) -> None:
        self.app = app
        self._metrics = metrics
        self._max_header = max_header_bytes  # None: no limit here

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), (b"x-request-id", request_id.encode())]}
            await send(message)

        metrics = self._metrics
        if metrics is not None:
            metrics.in_flight += 1
        try:
            refusal = _refusal(scope, self._max_header)
            await (refusal or self.app)(scope, receive, send_with_id)
        except ClientDisconnect:
            status = status or 499  # the client left; nothing to answer and nothing went wrong here
        finally:
            if metrics is not None:
                metrics.in_flight -= 1
                metrics.observe_request(scope["path"], scope.get("method", ""), status, time.perf_counter() - started)
        # Successes at DEBUG keep the hot path cheap.
        level = logging.DEBUG if 200 <= status < 300 else logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                "http method=%s path=%s status=%s duration_ms=%.2f request_id=%s",
                log_safe(scope.get("method", ""), 16),
                log_safe(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
                request_id,
            )


def _refusal(scope: Scope, max_header: int | None) -> ASGIApp | None:
    """431 for headers past the limit, 400 for a decision header sent more than once
    (SINGLE_HEADERS, `mcp-*`); None for a request that may go on."""
    headers = scope["headers"]
    if max_header is not None and _header_bytes(scope) > max_header:
        return header_too_large(max_header)
    # Names arrive lower-cased (ASGI); a request with no repeated name at all (nearly every
    # one) costs one set built in C.
    repeated = "" if len(set(map(_name, headers))) == len(headers) else _repeated(headers)
    return repeated_header(repeated) if repeated else None


def _header_bytes(scope: Scope) -> int:
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    for name, value in scope["headers"]:
        size += len(name) + len(value) + 4
    return size


_name = itemgetter(0)


def _repeated(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The first decision header that appears more than once, or ''."""
    seen: set[bytes] = set()
    for name, _ in headers:
        if name in SINGLE_HEADERS or name.startswith(b"mcp-"):
            if name in seen:
                return name.decode("latin-1")
            seen.add(name)
    return ""
