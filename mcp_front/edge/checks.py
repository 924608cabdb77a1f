"""The checks every toolkit request passes, in order, each a small ASGI middleware:

host/origin → method → bearer shape → per-key limits → credential (ListTools) → media
types → body (size, deadline, JSON-RPC screening) → the MCP endpoint.

Cheap checks come first and nothing reads the body before the credential is known, so an
unauthenticated or throttled caller costs no memory. Every refusal is audited through the
one `RefusalRecorder`.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_front.access import AccessCache
from mcp_front.edge import responses
from mcp_front.edge.body import BodyTimeout, BodyTooLarge, read_body, replay
from mcp_front.edge.failures import CredentialFailures
from mcp_front.edge.limits import KeyLimiter
from mcp_front.edge.refusals import RefusalRecorder
from mcp_front.edge.request import EDGE_KEY, EdgeRequest, header, key_of, parse_bearer
from mcp_front.edge.screen import screen
from mcp_front.mcp.sdk import TransportSecurityMiddleware, TransportSecuritySettings, check_accept_headers
from policy_service import errors

log = logging.getLogger("monomcp.front")


# Header values whose check passed, per checker: the verdicts depend only on these values and
# the front's settings, and building a starlette Request to ask the SDK again cost ~20-30 µs
# per request (docs/adr/0033). Bounded, since callers choose the values; refusals are never
# cached (the SDK logs each one).
_PASSED_MAX = 256


def _first(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def edge_of(scope: Scope) -> EdgeRequest:
    found = scope[EDGE_KEY]
    if not isinstance(found, EdgeRequest):
        raise RuntimeError("toolkit check reached without edge state")
    return found


class HostCheck:
    """DNS-rebinding protection: 421 for a Host, 403 for an Origin we do not serve. A
    verified custom domain (the router matched it) is a Host we serve, and its own https
    origin an Origin we serve."""

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings, recorder: RefusalRecorder) -> None:
        self.app, self._settings, self._recorder = app, security, recorder
        self._security = TransportSecurityMiddleware(security)
        self._passed: set[tuple[str, bytes | None, bytes | None]] = set()

    def _for_domain(self, domain: str) -> TransportSecurityMiddleware:
        allowed = TransportSecuritySettings(
            allowed_hosts=[domain, f"{domain}:*"],
            allowed_origins=[*self._settings.allowed_origins, f"https://{domain}", f"https://{domain}:*"],
        )
        return TransportSecurityMiddleware(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        domain = edge_of(scope).domain
        seen = (domain, _first(scope, b"host"), _first(scope, b"origin"))
        if seen in self._passed:
            await self.app(scope, receive, send)
            return
        security = self._for_domain(domain) if domain else self._security
        response = await security.validate_request(Request(scope), is_post=False)
        if response is None:
            if len(self._passed) < _PASSED_MAX:
                self._passed.add(seen)
            await self.app(scope, receive, send)
            return
        error = "invalid Host header" if response.status_code == 421 else "invalid Origin header"
        await self._recorder.record(edge_of(scope), "forbidden", error)
        await response(scope, receive, send)


class MethodCheck:
    """POST carries JSON-RPC; GET opens the client's standalone stream (docs/adr/0025); DELETE
    is 405, which the spec allows: the front's session ids are stateless, so it cannot end one
    (docs/adr/0030)."""

    def __init__(self, app: ASGIApp, recorder: RefusalRecorder) -> None:
        self.app, self._recorder = app, recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in ("POST", "GET"):
            await self.app(scope, receive, send)
            return
        await self._recorder.record(edge_of(scope), "invalid", f"method {scope['method'][:16]} not allowed")
        await Response(status_code=405, headers={"Allow": "GET, POST"})(scope, receive, send)


class BearerCheck:
    """A missing or malformed bearer is refused without asking anyone (it never reaches gRPC)."""

    def __init__(self, app: ASGIApp, recorder: RefusalRecorder) -> None:
        self.app, self._recorder = app, recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        edge = edge_of(scope)
        token, problem = parse_bearer(header(scope, b"authorization"))
        if problem:
            await self._recorder.record(edge, "unauthenticated", problem)
            await responses.unauthorized(problem, edge.resource_metadata)(scope, receive, send)
            return
        edge.token, edge.key = token, key_of(token)
        await self.app(scope, receive, send)


class LimitCheck:
    """Per-key rate and concurrency limits; the slot is held until the response is sent."""

    def __init__(self, app: ASGIApp, limiter: KeyLimiter, recorder: RefusalRecorder) -> None:
        self.app, self._limiter, self._recorder = app, limiter, recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        edge = edge_of(scope)
        admission = await self._limiter.admit(edge.key)
        if not admission.allowed:
            await self._recorder.record(edge, "rate_limited", admission.reason)
            await responses.too_many_requests(admission.retry_after, admission.reason)(scope, receive, send)
            return
        if scope["method"] == "GET":
            # A standing stream is not a request in flight: the stream hub bounds them per credential.
            await admission.release()
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            await admission.release()


class CredentialCheck:
    """The policy service's ListTools (cached ≤1 s) says who this is and what they may see."""

    def __init__(
        self,
        app: ASGIApp,
        access: AccessCache,
        recorder: RefusalRecorder,
        failures: CredentialFailures | None = None,
    ) -> None:
        self.app, self._access, self._recorder = app, access, recorder
        self._failures = failures or CredentialFailures()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        edge = edge_of(scope)
        wait = self._failures.retry_after(edge.client_address)
        if wait:
            reason = "too many failed credentials from this address"
            await self._recorder.record(edge, "rate_limited", reason)
            await responses.too_many_requests(wait, reason)(scope, receive, send)
            return
        try:
            edge.access = await self._access.get(edge.token, edge.org, edge.toolkit, key=edge.key)
        except errors.Unauthenticated as exc:
            await self._failures.failed(edge.client_address)
            await self._recorder.record(edge, "unauthenticated", exc.message)
            await responses.unauthorized(exc.message, edge.resource_metadata)(scope, receive, send)
            return
        except errors.NotFound:
            await self._recorder.record(edge, "not_found", "no such toolkit")
            await responses.not_found()(scope, receive, send)
            return
        except errors.PolicyError as exc:
            log.warning("policy unavailable on %s/%s: %s", edge.org, edge.toolkit, exc.message)
            await responses.policy_unavailable()(scope, receive, send)
            return
        await self.app(scope, receive, send)


class MediaCheck:
    """A Content-Type or Accept the SDK will refuse (400/406) is audited here, then the SDK
    answers exactly as it always does (without the body ever being read)."""

    def __init__(self, app: ASGIApp, sdk: ASGIApp, recorder: RefusalRecorder) -> None:
        self.app, self._sdk, self._recorder = app, sdk, recorder
        self._accepted: set[bytes | None] = set()

    def _accepts_json(self, scope: Scope) -> bool:
        accept = _first(scope, b"accept")
        if accept in self._accepted:
            return True
        if not check_accept_headers(Request(scope))[0]:
            return False
        if len(self._accepted) < _PASSED_MAX:
            self._accepted.add(accept)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = header(scope, b"content-type").lower()
        if not content_type.startswith("application/json"):
            problem = "Content-Type must be application/json"
        elif not self._accepts_json(scope):
            problem = "not acceptable: the client must accept application/json"
        else:
            await self.app(scope, receive, send)
            return
        await self._recorder.record(edge_of(scope), "invalid", problem)
        await self._sdk(scope, receive, send)


class BodyCheck:
    """Reads the body within its size and time budget, then screens the JSON-RPC message."""

    def __init__(self, app: ASGIApp, recorder: RefusalRecorder, max_bytes: int, timeout_seconds: float) -> None:
        self.app, self._recorder = app, recorder
        self._max_bytes, self._timeout = max_bytes, timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        edge = edge_of(scope)
        try:
            edge.body = await read_body(scope, receive, self._max_bytes, self._timeout)
        except BodyTooLarge:
            await self._recorder.record(edge, "invalid", "request body too large")
            await responses.body_too_large(self._max_bytes)(scope, receive, send)
            return
        except BodyTimeout:
            await self._recorder.record(edge, "invalid", "request body too slow")
            await responses.body_timeout(self._timeout)(scope, receive, send)
            return
        except ClientDisconnect:
            await self._recorder.record(edge, "invalid", "client disconnected before sending the whole body")
            return
        verdict = screen(edge.body, edge.protocol_version)
        edge.message = verdict.message
        if verdict.audit_status is not None:
            await self._recorder.record(
                edge,
                verdict.audit_status,
                verdict.error,
                method=verdict.method,
                tool=verdict.tool,
                request_json=verdict.request_json,
            )
        if verdict.respond is not None:
            await responses.jsonrpc_body(*verdict.respond)(scope, receive, send)
            return
        await self.app(scope, replay(edge.body, receive), send)
