"""The checks every toolkit request passes, in order, in one coroutine (`EdgeChecks`):

host/origin → method → bearer shape → (OAuth audience) → per-key limits → credential
(ListTools) → session id → GET: the standalone stream; POST: media types → body (size,
deadline, JSON-RPC screening) → the MCP endpoint.

Cheap checks come first and nothing reads the body before the credential is known, so an
unauthenticated or throttled caller costs no memory. Every refusal is audited through the
one `RefusalRecorder`, then answered. Each check is a plain method that returns its refusal
(an ASGI answer, after auditing it) or None: ten nested ASGI layers cost ten frames on every
resumption of the request's coroutine, and ten calls on the way in (docs/adr/0040).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_front.access import AccessCache
from mcp_front.backends.negotiation import LISTEN
from mcp_front.edge import responses
from mcp_front.edge.body import BodyTimeout, BodyTooLarge, read_body, replay
from mcp_front.edge.failures import CredentialFailures
from mcp_front.edge.limits import Admission, KeyLimiter
from mcp_front.edge.oauth import ResourceServer
from mcp_front.edge.refusals import Refusal, RefusalRecorder, answer_refusal
from mcp_front.edge.request import EDGE_KEY, EdgeRequest, header, key_of, parse_bearer
from mcp_front.edge.screen import screen
from mcp_front.edge.sessions import SessionIds, session_refusal
from mcp_front.mcp.sdk import TransportSecurityMiddleware, TransportSecuritySettings, check_accept_headers
from policy_service import errors

log = logging.getLogger("monomcp.front")


# Header values whose check passed, per checker: the verdicts depend only on these values and
# the front's settings, and building a starlette Request to ask the SDK again cost ~20-30 µs
# per request (docs/adr/0033). Bounded, since callers choose the values; refusals are never
# cached (the SDK logs each one).
_PASSED_MAX = 256


def _standing(message: object) -> bool:
    """2026-07-28's standing stream (`subscriptions/listen`, the initialize era's GET): open as
    long as the client listens and bounded per credential by the stream hub, so, like a GET,
    it gives its in-flight slots back (the rate limits counted it)."""
    return isinstance(message, dict) and message.get("method") == LISTEN


async def _give_back(edge: EdgeRequest) -> None:
    """Releases every limit slot the request holds, once, innermost first."""
    held, edge.slots = edge.slots, []
    for release in reversed(held):
        await release()


def _first(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _no_answer(scope: Scope, receive: Receive, send: Send) -> None:
    """For a client that left: nobody to answer."""


def edge_of(scope: Scope) -> EdgeRequest:
    found = scope[EDGE_KEY]
    if not isinstance(found, EdgeRequest):
        raise RuntimeError("toolkit check reached without edge state")
    return found


class HostCheck:
    """DNS-rebinding protection: 421 for a Host, 403 for an Origin we do not serve. A
    verified custom domain (the router matched it) is a Host we serve, and its own https
    origin an Origin we serve."""

    def __init__(self, security: TransportSecuritySettings) -> None:
        self._settings = security
        self._security = TransportSecurityMiddleware(security)
        self._passed: set[tuple[str, bytes | None, bytes | None]] = set()

    def _for_domain(self, domain: str) -> TransportSecurityMiddleware:
        allowed = TransportSecuritySettings(
            allowed_hosts=[domain, f"{domain}:*"],
            allowed_origins=[*self._settings.allowed_origins, f"https://{domain}", f"https://{domain}:*"],
        )
        return TransportSecurityMiddleware(allowed)

    def passed(self, edge: EdgeRequest, scope: Scope) -> bool:
        """These Host and Origin values passed before (no need to ask the SDK again)."""
        return (edge.domain, _first(scope, b"host"), _first(scope, b"origin")) in self._passed

    async def refusal(self, edge: EdgeRequest, scope: Scope) -> Refusal | None:
        """The SDK's verdict on values that have not `passed` before."""
        domain = edge.domain
        seen = (domain, _first(scope, b"host"), _first(scope, b"origin"))
        security = self._for_domain(domain) if domain else self._security
        response = await security.validate_request(Request(scope), is_post=False)
        if response is None:
            if len(self._passed) < _PASSED_MAX:
                self._passed.add(seen)
            return None
        error = "invalid Host header" if response.status_code == 421 else "invalid Origin header"
        return Refusal("forbidden", error, response)


class MediaCheck:
    """A Content-Type or Accept the SDK will refuse (400/406) is audited here, then the SDK
    answers exactly as it always does (without the body ever being read)."""

    def __init__(self, sdk: ASGIApp) -> None:
        self._sdk = sdk
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

    def refusal(self, scope: Scope) -> Refusal | None:
        content_type = header(scope, b"content-type").lower()
        if not content_type.startswith("application/json"):
            return Refusal("invalid", "Content-Type must be application/json", self._sdk)
        if not self._accepts_json(scope):
            return Refusal("invalid", "not acceptable: the client must accept application/json", self._sdk)
        return None


@dataclass(frozen=True, slots=True)
class EdgeParts:
    """What the checks consult, besides the endpoints they lead to."""

    security: TransportSecuritySettings
    recorder: RefusalRecorder
    limiter: KeyLimiter
    access: AccessCache
    failures: CredentialFailures
    sessions: SessionIds
    max_body_bytes: int
    body_timeout_seconds: float
    person_limiter: KeyLimiter
    org_limiter: KeyLimiter
    oauth: ResourceServer | None = None


class EdgeChecks:
    """Every check of a toolkit request, then `post` (JSON-RPC) or `get` (the standalone stream).
    The checks that need no I/O to pass are plain calls; only a refusal is awaited (audited)."""

    def __init__(self, parts: EdgeParts, post: ASGIApp, get: ASGIApp, sdk: ASGIApp) -> None:
        self._parts, self._post, self._get = parts, post, get
        self._recorder = parts.recorder
        self._host = HostCheck(parts.security)
        self._media = MediaCheck(sdk)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        edge = edge_of(scope)
        host = self._host
        refusal = (
            (None if host.passed(edge, scope) else await host.refusal(edge, scope))
            or _method_refusal(scope)
            or _bearer_refusal(edge, scope)
            or self._audience_refusal(edge)
        )
        if refusal is not None:
            await answer_refusal(self._recorder, edge, refusal, scope, receive, send)
            return
        # Limit slots (per key now; per person and org once the credential is known) are held
        # until the response is sent, and given back earlier for a standing stream.
        try:
            if await self._took(edge, await self._parts.limiter.admit(edge.key), scope, receive, send):
                await self._admitted(edge, scope, receive, send)
        finally:
            await _give_back(edge)

    async def _took(self, edge: EdgeRequest, admission: Admission, scope: Scope, receive: Receive, send: Send) -> bool:
        """Holds an admitted limit slot for this request, or answers 429 (audited) and says no."""
        if admission.allowed:
            edge.slots.append(admission.release)
            return True
        answer = responses.too_many_requests(admission.retry_after, admission.reason)
        await answer_refusal(
            self._recorder, edge, Refusal("rate_limited", admission.reason, answer), scope, receive, send
        )
        return False

    async def _admitted(self, edge: EdgeRequest, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = await self._credential_refusal(edge) or session_refusal(self._parts.sessions, edge, scope)
        if refusal is not None:
            await answer_refusal(self._recorder, edge, refusal, scope, receive, send)
            return
        # Who is calling is known now: a signed-in person's limits bound all their sessions'
        # tokens together, the org's every key and person of that org together.
        for limiter, holder in self._identified_limits(edge):
            if not await self._took(edge, await limiter.admit(holder), scope, receive, send):
                return
        if scope["method"] == "GET":
            await _give_back(edge)
            await self._get(scope, receive, send)
            return
        refusal = self._media.refusal(scope) or await self._body_refusal(edge, scope, receive)
        if refusal is not None:
            await answer_refusal(self._recorder, edge, refusal, scope, receive, send)
            return
        if _standing(edge.message):
            await _give_back(edge)
        await self._post(scope, replay(edge.body, receive), send)

    def _identified_limits(self, edge: EdgeRequest) -> list[tuple[KeyLimiter, str]]:
        access = edge.access
        if access is None:
            return []
        limits = []
        if access.principal_kind == "user":  # each sign-in is a new bearer: count the person
            limits.append((self._parts.person_limiter, access.principal_id))
        if access.principal_org:  # the operator belongs to no org
            limits.append((self._parts.org_limiter, access.principal_org))
        return limits

    def _audience_refusal(self, edge: EdgeRequest) -> Refusal | None:
        """OAuth resource-server mode: a provider token minted for another resource is refused."""
        oauth = self._parts.oauth
        if oauth is None or not oauth.bound_elsewhere(edge.token, edge.resource):
            return None
        problem = "token audience is not this endpoint"
        return Refusal("unauthenticated", problem, responses.unauthorized(problem, edge.resource_metadata))

    async def _credential_refusal(self, edge: EdgeRequest) -> Refusal | None:
        """The policy service's ListTools (cached ≤1 s) says who this is and what they may see."""
        failures = self._parts.failures
        wait = failures.retry_after(edge.client_address)
        if wait:
            reason = "too many failed credentials from this address"
            return Refusal("rate_limited", reason, responses.too_many_requests(wait, reason))
        try:
            edge.access = await self._parts.access.get(edge.token, edge.org, edge.toolkit, key=edge.key)
        except errors.Unauthenticated as exc:
            await failures.failed(edge.client_address)
            return Refusal("unauthenticated", exc.message, responses.unauthorized(exc.message, edge.resource_metadata))
        except errors.NotFound:
            return Refusal("not_found", "no such toolkit", responses.not_found())
        except errors.PolicyError as exc:  # not the caller's doing: nothing to audit
            log.warning("policy unavailable on %s/%s: %s", edge.org, edge.toolkit, exc.message)
            return Refusal("", "", responses.policy_unavailable())
        return None

    async def _body_refusal(self, edge: EdgeRequest, scope: Scope, receive: Receive) -> Refusal | None:
        """Reads the body within its size and time budget, then screens the JSON-RPC message.
        A client that left before sending it all is audited, and nobody is answered."""
        parts = self._parts
        try:
            edge.body = await read_body(scope, receive, parts.max_body_bytes, parts.body_timeout_seconds)
        except BodyTooLarge:
            return Refusal("invalid", "request body too large", responses.body_too_large(parts.max_body_bytes))
        except BodyTimeout:
            return Refusal("invalid", "request body too slow", responses.body_timeout(parts.body_timeout_seconds))
        except ClientDisconnect:
            return Refusal("invalid", "client disconnected before sending the whole body", _no_answer)
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
        if verdict.respond is not None:  # audited above, with what the screen found
            return Refusal("", "", responses.jsonrpc_body(*verdict.respond))
        return None


def _method_refusal(scope: Scope) -> Refusal | None:
    """POST carries JSON-RPC; GET opens the client's standalone stream (docs/adr/0025); DELETE
    is 405, which the spec allows: the front's session ids are stateless, so it cannot end one
    (docs/adr/0030)."""
    method = scope["method"]
    if method in ("POST", "GET"):
        return None
    return Refusal(
        "invalid", f"method {method[:16]} not allowed", Response(status_code=405, headers={"Allow": "GET, POST"})
    )


def _bearer_refusal(edge: EdgeRequest, scope: Scope) -> Refusal | None:
    """A missing or malformed bearer is refused without asking anyone (it never reaches gRPC)."""
    token, problem = parse_bearer(header(scope, b"authorization"))
    if problem:
        return Refusal("unauthenticated", problem, responses.unauthorized(problem, edge.resource_metadata))
    edge.token, edge.key = token, key_of(token)
    return None
