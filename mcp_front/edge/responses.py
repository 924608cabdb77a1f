"""The answers the edge writes itself: JSON-RPC error bodies with an HTTP status."""

from __future__ import annotations

import math
from typing import Any

from starlette.responses import JSONResponse, Response

NOT_FOUND_BODY = {"error": "not_found", "message": "No such toolkit."}
POLICY_UNAVAILABLE = "Policy service unavailable: the call was not run. Try again shortly."


def jsonrpc_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def jsonrpc_body(status: int, body: dict[str, Any]) -> Response:
    return JSONResponse(body, status_code=status)


def unauthorized(description: str, resource_metadata: str = "") -> Response:
    """401 with a Bearer challenge; in OAuth resource-server mode it names the endpoint's
    protected-resource metadata (RFC 9728 §5.1) so clients can find the authorization server."""
    challenge = f'Bearer realm="monomcp", error="invalid_token", error_description="{description}"'
    if resource_metadata:
        challenge += f', resource_metadata="{resource_metadata}"'
    return jsonrpc_error(401, -32001, f"Unauthorized: {description}", {"WWW-Authenticate": challenge})


def not_found() -> Response:
    return JSONResponse(NOT_FOUND_BODY, status_code=404)


def retry_seconds(retry_after: float) -> str:
    """A `Retry-After` value: whole seconds, at least one."""
    return str(max(1, math.ceil(retry_after)))


def too_many_requests(retry_after: float, reason: str) -> Response:
    seconds = retry_seconds(retry_after)
    return jsonrpc_error(
        429, -32000, f"Too many requests: {reason}. Retry after {seconds} s.", {"Retry-After": seconds}
    )


def header_too_large(limit: int) -> Response:
    return jsonrpc_error(431, -32600, f"Request headers exceed {limit} bytes", {"Connection": "close"})


def repeated_header(name: str) -> Response:
    return jsonrpc_error(
        400, -32600, f"Bad request: the {name} header was sent more than once", {"Connection": "close"}
    )


def body_timeout(seconds: float) -> Response:
    return jsonrpc_error(408, -32600, f"Request body not received within {seconds:g} s", {"Connection": "close"})


def body_too_large(limit: int) -> Response:
    return jsonrpc_error(413, -32600, f"Request body exceeds {limit} bytes", {"Connection": "close"})


def policy_unavailable() -> Response:
    return jsonrpc_error(503, -32603, POLICY_UNAVAILABLE)
