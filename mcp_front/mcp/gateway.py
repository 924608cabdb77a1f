"""The HTTP edge of every toolkit endpoint, before any MCP handling:
DNS-rebinding protection, 405 for GET/DELETE, 401 without a credential, body size limit,
401/404 from the policy service, then the SDK's stateless JSON session manager."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import TypedDict

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from mcp_front.access import AccessCache
from mcp_front.mcp.calls import POLICY_UNAVAILABLE, ToolCaller
from mcp_front.mcp.context import SCOPE_KEY, GatewayRequest, current_request
from mcp_front.mcp.server import build_server
from mcp_front.mcp.tasks import TaskHandlers
from policy_service import errors
from policy_service.client import PolicyClient

log = logging.getLogger("monomcp.front")

NOT_FOUND_BODY = {"error": "not_found", "message": "No such toolkit."}


def _jsonrpc_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def unauthorized(description: str) -> Response:
    challenge = f'Bearer realm="monomcp", error="invalid_token", error_description="{description}"'
    return _jsonrpc_error(401, -32001, f"Unauthorized: {description}", {"WWW-Authenticate": challenge})


def not_found() -> Response:
    return JSONResponse(NOT_FOUND_BODY, status_code=404)


class RequestFacts(TypedDict):
    request_id: str
    client_address: str
    user_agent: str
    protocol_version: str


def request_facts(request: Request) -> RequestFacts:
    """Where a request came from, for the audit row and the log line."""
    client = request.scope.get("client")
    return {
        "request_id": request.headers.get("x-request-id", "")[:64] or uuid.uuid4().hex,
        "client_address": client[0] if client else "",
        "user_agent": request.headers.get("user-agent", "")[:512],
        "protocol_version": request.headers.get("mcp-protocol-version", ""),
    }


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class McpGateway:
    def __init__(
        self,
        policy: PolicyClient,
        access: AccessCache,
        caller: ToolCaller,
        tasks: TaskHandlers,
        security: TransportSecuritySettings,
        max_body_bytes: int,
    ) -> None:
        self._policy = policy
        self._access = access
        self._security = TransportSecurityMiddleware(security)
        self._max_body = max_body_bytes
        self._manager = StreamableHTTPSessionManager(
            app=build_server(caller, tasks, policy),
            json_response=True,
            stateless=True,
            security_settings=security,
            max_request_body_size=max_body_bytes,
        )

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        async with self._manager.run():
            yield

    async def handle(self, scope: Scope, receive: Receive, send: Send, org: str, toolkit: str) -> None:
        request = Request(scope, receive)
        response = await self._security.validate_request(request, is_post=False)
        if response is None and request.method != "POST":
            response = Response(status_code=405, headers={"Allow": "POST"})
        if response is not None:
            await response(scope, receive, send)
            return
        token = bearer_token(request)
        if token is None:
            await self._record_rejection(request, "", org, toolkit, "unauthenticated", "missing bearer token")
            await unauthorized("missing bearer token")(scope, receive, send)
            return
        body = await self._read_body(request)
        if body is None:
            await self._record_rejection(request, token, org, toolkit, "invalid", "request body too large")
            await _jsonrpc_error(413, -32600, f"Request body exceeds {self._max_body} bytes")(scope, receive, send)
            return
        try:
            access = await self._access.get(token, org, toolkit)
        except errors.Unauthenticated as exc:
            await self._record_rejection(request, token, org, toolkit, "unauthenticated", exc.message)
            await unauthorized(exc.message)(scope, receive, send)
            return
        except errors.NotFound:
            await self._record_rejection(request, token, org, toolkit, "not_found", "no such toolkit")
            await not_found()(scope, receive, send)
            return
        except errors.PolicyError as exc:
            log.warning("policy unavailable on %s/%s: %s", org, toolkit, exc.message)
            await _jsonrpc_error(503, -32603, POLICY_UNAVAILABLE)(scope, receive, send)
            return
        gateway_request = GatewayRequest(
            credential=token, org=org, toolkit=toolkit, access=access, **request_facts(request)
        )
        scope = dict(scope)
        scope[SCOPE_KEY] = gateway_request
        reset = current_request.set(gateway_request)
        try:
            await self._manager.handle_request(
                scope, _replay(body, receive), _with_request_id(send, gateway_request.request_id)
            )
        finally:
            current_request.reset(reset)

    async def _record_rejection(
        self, request: Request, credential: str, org: str, toolkit: str, status: str, error: str
    ) -> None:
        """Requests refused before MCP handling are audited too (best effort: nothing ran)."""
        try:
            await self._policy.record_request(
                credential, org, toolkit, "http", status=status, error=error, **request_facts(request)
            )
        except errors.PolicyError as exc:
            log.warning("could not audit a rejected request on %s/%s: %s", org, toolkit, exc.message)

    async def _read_body(self, request: Request) -> bytes | None:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)


def _replay(body: bytes, original: Receive) -> Receive:
    """Hands the already-read body to the SDK, then passes through (e.g. disconnects)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive


def _with_request_id(send: Send, request_id: str) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers.append((b"x-request-id", request_id.encode()))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped
