"""The front's traces: a server span per HTTP request (joining the caller's W3C trace when
it sends one), spans for the steps of a tool call (authorize, execute, complete), and the
`traceparent` header on every request to a toolkit backend.

Tracing is configured by the standard OTEL_* variables (policy_service/observability/
tracing.py). Off, the middleware is not installed, a traced step costs one global read,
and backend headers pass through untouched.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_front.observability.metrics import route_of
from policy_service.observability.tracing import tracer

P = ParamSpec("P")
T = TypeVar("T")

_CARRIED = (b"traceparent", b"tracestate", b"baggage")


def traced(name: str) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """A span named `name` around an async step, e.g. `@traced("monomcp.execute")`."""

    def decorate(step: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        async def spanned(*args: P.args, **kwargs: P.kwargs) -> T:
            active = tracer()
            if active is None:  # switched off while the call was being set up
                return await step(*args, **kwargs)
            with active.start_as_current_span(name):
                return await step(*args, **kwargs)

        @functools.wraps(step)
        def call(*args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, T]:
            # Off: the step's own coroutine, with no extra frame.
            return step(*args, **kwargs) if tracer() is None else spanned(*args, **kwargs)

        return call

    return decorate


def with_trace_context(headers: dict[str, str]) -> dict[str, str]:
    """`headers` plus the current trace context (`traceparent`, `tracestate`) when tracing
    is on; the same dict, untouched, when it is off."""
    if tracer() is None:
        return headers
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if not carrier:
        return headers
    kept = {k: v for k, v in headers.items() if k.lower() not in ("traceparent", "tracestate", "baggage")}
    return kept | carrier


class TracingMiddleware:
    """Outermost layer: a SERVER span per HTTP request, current while the request is served,
    so the request log line and every span below carry its trace id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        active = tracer()
        if scope["type"] != "http" or active is None:
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _CARRIED}
        method = scope.get("method", "")
        route = route_of(scope["path"])
        attributes = {"http.request.method": method, "url.path": scope["path"], "http.route": route}
        with active.start_as_current_span(
            f"{method} {route}", context=propagate.extract(carrier), kind=SpanKind.SERVER, attributes=attributes
        ) as span:

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_traced)


def asgi_middleware(app: ASGIApp) -> ASGIApp:
    """`app` wrapped in the tracing middleware when tracing is on; `app` itself when off."""
    return TracingMiddleware(app) if tracer() is not None else app
