"""Limits before work on the admin surface (REST API, console, docs), as on MCP endpoints:
a body is read only within the size and time budget, and a validation error never echoes
the request back (nor fails on values JSON cannot carry, such as NaN)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_front.edge.body import BodyTimeout, BodyTooLarge, read_body, replay
from mcp_front.edge.responses import body_timeout, body_too_large

_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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
