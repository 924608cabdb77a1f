"""Checks on what an org admin may store as a toolkit's backend: URL and extra headers.

Why: the front writes these into raw HTTP/1.1 requests. A `Host`, `Content-Length` or
`Transfer-Encoding` header, or a line break in a value, would let the admin reframe the
request (smuggling, a second request on a pooled connection); the URL must pass the
operator's egress policy (egress.py) before anything is stored.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

from policy_service.errors import InvalidArgument
from policy_service.toolkits.egress import EgressDenied, EgressPolicy, ResolveFailed

# Framing and hop-by-hop headers (RFC 9110 §7.6.1): never from configuration, never twice.
FRAMING_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "proxy-authenticate",
        "proxy-authorization",
    }
)
# What an admin may not configure: framing, and the session header the gateway manages.
FORBIDDEN_HEADERS = FRAMING_HEADERS | {"mcp-session-id"}
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
MAX_HEADERS = 32
MAX_VALUE_BYTES = 8192
RESOLVE_TIMEOUT_SECONDS = 5.0


def header_problem(name: str, value: str, forbidden: frozenset[str] = FORBIDDEN_HEADERS) -> str | None:
    """Why this header may not be sent to a backend, or None."""
    if not _TOKEN.match(name):
        return f"backend header name {name[:40]!r} is not a valid HTTP header name"
    if name.lower() in forbidden:
        return f"backend header {name!r} is set by the gateway and may not be configured"
    if _BAD_VALUE.search(value):
        return f"backend header {name!r} contains a line break or control character"
    try:
        encoded = value.encode("latin-1")
    except UnicodeEncodeError:
        return f"backend header {name!r} must be Latin-1 text"
    if len(encoded) > MAX_VALUE_BYTES:
        return f"backend header {name!r} is longer than {MAX_VALUE_BYTES} bytes"
    return None


def check_backend_headers(headers: dict[str, str]) -> None:
    if len(headers) > MAX_HEADERS:
        raise InvalidArgument(f"at most {MAX_HEADERS} backend headers", "BAD_BACKEND_HEADER")
    for name, value in headers.items():
        problem = header_problem(name, value)
        if problem is not None:
            raise InvalidArgument(problem, "BAD_BACKEND_HEADER")


async def check_backend_url(url: str, egress: EgressPolicy) -> None:
    """Refuses (INVALID_ARGUMENT) a URL that is not http(s) or that the egress policy denies.

    A name that does not resolve yet is accepted: the front checks again on connect.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidArgument(f"backend_url is not a valid URL: {exc}", "BAD_URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument("backend_url must be an http(s) URL with a host", "BAD_URL")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument("backend_url may not carry credentials; use backend headers", "BAD_URL")
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            await egress.resolve(parts.hostname, port)
    except EgressDenied as exc:
        raise InvalidArgument(f"backend_url is not allowed: {exc}", "BACKEND_NOT_ALLOWED") from None
    except (ResolveFailed, TimeoutError):
        return
