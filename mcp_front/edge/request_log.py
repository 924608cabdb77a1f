"""The outermost layer: a request id on every response, one structured log line per
request (caller-controlled text escaped so it cannot forge log lines), and 431 for headers
past the limit, on every path. The server protocol (`protocol.py`) stops oversized headers
while they stream in; the check here catches the rest. One layer, not two: every layer is a
frame each await of the request passes through (docs/adr/0033)."""

from __future__ import annotations

import logging
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_front.edge.request import request_id_of
from mcp_front.edge.responses import header_too_large
from mcp_front.edge.text import log_safe
from mcp_front.observability.metrics import FrontMetrics

log = logging.getLogger("monomcp.front")


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
            if self._max_header is not None and _header_bytes(scope) > self._max_header:
                await header_too_large(self._max_header)(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
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


def _header_bytes(scope: Scope) -> int:
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    for name, value in scope["headers"]:
        size += len(name) + len(value) + 4
    return size
