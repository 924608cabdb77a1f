"""What the edge knows about one toolkit request, shared by its checks through the scope."""

from __future__ import annotations

import hashlib
import os
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Scope

from mcp_front.access import ToolkitAccess
from mcp_front.edge.text import escape_control

EDGE_KEY = "monomcp.edge"
REQUEST_ID_KEY = "monomcp.request_id"
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# RFC 6750 b64token, plus the dots of a JWT; a bearer longer than this is refused unseen.
_BEARER = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
MAX_BEARER_CHARS = 4096
# Request ids correlate log lines and audit rows; they need to be unique, not secret. uuid4
# costs a getrandom syscall and a UUID object per request (~5-15 µs); this generator is seeded
# from the OS once per process (again in a forked child) and gives the same 32 hex digits.
_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def request_id_of(scope: Scope) -> str:
    """The client's X-Request-Id when it is a plain token, else a fresh one."""
    found = scope.get(REQUEST_ID_KEY)
    if isinstance(found, str):
        return found
    given = header(scope, b"x-request-id")
    request_id = given if _CLIENT_REQUEST_ID.fullmatch(given) else f"{_ids.getrandbits(128):032x}"
    scope[REQUEST_ID_KEY] = request_id
    return request_id


def bearer_of(authorization: str) -> str:
    """The token of a `Bearer` Authorization header ('' for any other or none), unchecked."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def parse_bearer(authorization: str) -> tuple[str, str]:
    """(token, problem): exactly one is non-empty when a header was sent."""
    token = bearer_of(authorization)
    if not token:
        return "", "missing bearer token"
    if len(token) > MAX_BEARER_CHARS or not _BEARER.fullmatch(token):
        return "", "malformed bearer token"
    return token, ""


def key_of(token: str) -> str:
    """Limits and caches are keyed by a hash: the bearer itself is never kept."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(slots=True)
class EdgeRequest:
    org: str
    toolkit: str
    request_id: str
    client_address: str
    user_agent: str
    protocol_version: str
    token: str = ""
    key: str = ""
    access: ToolkitAccess | None = None
    body: bytes = b""
    # The verified custom domain this request came through ('' on the gateway's own hosts).
    domain: str = ""
    # The endpoint's URL as the client addresses it, and (OAuth resource-server mode only)
    # the URL of its protected-resource metadata, named in 401 challenges.
    resource: str = ""
    resource_metadata: str = ""
    message: Any = None  # the body decoded by the screen, when it is a request that passed
    # The releases of the limit slots this request holds (per key, then per org), innermost last.
    slots: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def credential(self) -> str:
        """The bearer under the name the MCP side's requests give it (`mcp.context.Caller`)."""
        return self.token

    @classmethod
    def from_scope(cls, scope: Scope, org: str, toolkit: str) -> EdgeRequest:
        client = scope.get("client")
        return cls(
            org=org,
            toolkit=toolkit,
            request_id=request_id_of(scope),
            client_address=client[0] if client else "",
            user_agent=escape_control(header(scope, b"user-agent")[:512]),
            protocol_version=escape_control(header(scope, b"mcp-protocol-version")[:64]),
        )

    def facts(self) -> dict[str, str]:
        return {
            "request_id": self.request_id,
            "client_address": self.client_address,
            "user_agent": self.user_agent,
            "protocol_version": self.protocol_version,
        }
