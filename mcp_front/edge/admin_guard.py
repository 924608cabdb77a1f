"""Limits before work on the admin surface (REST API, console, docs), as on MCP endpoints:
per-credential rate and in-flight limits and the failed-credential budget per client address
(`AdminLimits`, the same budgets the toolkit endpoints use), a body read only within the size
and time budget, and a validation error that never echoes the request back (nor fails on
values JSON cannot carry, such as NaN)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.requests import ClientDisconnect, cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_front.admin.auth import COOKIE
from mcp_front.edge.body import BodyTimeout, BodyTooLarge, read_body, replay
from mcp_front.edge.failures import CredentialFailures
from mcp_front.edge.limits import KeyLimiter
from mcp_front.edge.request import bearer_of, header, key_of
from mcp_front.edge.responses import body_timeout, body_too_large, retry_seconds

_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _credential(scope: Scope) -> str:
    """The bearer token or console session a request carries ('' for anonymous pages), as
    `ConsoleAuth.caller` reads them."""
    token = bearer_of(header(scope, b"authorization"))
    if token:
        return token
    cookies = header(scope, b"cookie")
    return cookie_parser(cookies).get(COOKIE, "") if cookies else ""


def _too_many(retry_after: float, reason: str) -> Response:
    """The REST API's shape of `responses.too_many_requests` (an error `detail`, not JSON-RPC)."""
    seconds = retry_seconds(retry_after)
    detail = {"reason": "RATE_LIMITED", "message": f"Too many requests: {reason}. Retry after {seconds} s."}
    return JSONResponse({"detail": detail}, status_code=429, headers={"Retry-After": seconds})


class AdminLimits:
    """A credential's requests to the REST API and console count against the same per-key
    rate and in-flight budget as its MCP calls, and a 401 against its address's failed
    credential budget. Without them one admin key (or a scanner inventing bearers) could
    send the shared policy service and database unbounded work, every tenant's hot path
    included. Anonymous requests (sign-in pages) pass: sign-in has its own limits."""

    def __init__(self, app: ASGIApp, limiter: KeyLimiter, failures: CredentialFailures) -> None:
        self.app = app
        self._limiter = limiter
        self._failures = failures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        credential = _credential(scope) if scope["type"] == "http" else ""
        if not credential:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else ""
        wait = self._failures.retry_after(address)
        if wait:
            await _too_many(wait, "too many failed credentials from this address")(scope, receive, send)
            return
        admission = await self._limiter.admit(key_of(credential))
        if not admission.allowed:
            await _too_many(admission.retry_after, admission.reason)(scope, receive, send)
            return
        status = 0

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            await admission.release()
        if status == 401:
            await self._failures.failed(address)


class BoundedBody:
    def __init__(self, app: ASGIApp, max_bytes: int, deadline_seconds: float) -> None:
        self.app = app
        self._max = max_bytes
        self._deadline = deadline_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(scope, receive, self._max, self._deadline)
        except BodyTooLarge:
            await body_too_large(self._max)(scope, receive, send)
            return
        except BodyTimeout:
            await body_timeout(self._deadline)(scope, receive, send)
            return
        except ClientDisconnect:
            return
        await self.app(scope, replay(body, receive), send)


def _safe(error: dict[str, Any]) -> dict[str, Any]:
    """Where and why, never the offending input (it may be huge, secret or not JSON-safe)."""
    return {
        "loc": [str(part) for part in error.get("loc", ())],
        "msg": str(error.get("msg", "")),
        "type": error.get("type", ""),
    }


async def validation_error(request: Request, exc: Exception) -> Response:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": [_safe(e) for e in errors[:20]]}, status_code=422)
