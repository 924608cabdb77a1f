"""What a custom domain may be, and where its proofs of control live."""

from __future__ import annotations

import re
import secrets

from policy_service.errors import InvalidArgument

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# The TXT record and HTTP path an org publishes to prove it controls the domain.
TXT_PREFIX = "_monomcp-challenge"
TXT_VALUE_PREFIX = "monomcp-domain-verification="
HTTP_PATH = "/.well-known/monomcp-domain-verification"
# The gateway's own names can never be claimed by an org.
_RESERVED_SUFFIXES = ("localhost", "local", "internal", "invalid")


def normalize(domain: str) -> str:
    """A lower-case host name with at least two labels (no port, no IP, no wildcard), or
    INVALID_ARGUMENT. International names arrive in their ASCII (punycode) form."""
    name = domain.strip().lower().rstrip(".")
    if not name or len(name) > 253 or not name.isascii():
        raise InvalidArgument("domain must be an ASCII host name of at most 253 characters", "BAD_DOMAIN")
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidArgument(f"{name!r} is not a host name like mcp.example.com", "BAD_DOMAIN")
    if labels[-1].isdigit():
        raise InvalidArgument("an IP address cannot be a custom domain", "BAD_DOMAIN")
    if labels[-1] in _RESERVED_SUFFIXES:
        raise InvalidArgument(f"{name!r} is a reserved name", "BAD_DOMAIN")
    return name


def new_token() -> str:
    return secrets.token_urlsafe(32)


def txt_record_name(domain: str) -> str:
    return f"{TXT_PREFIX}.{domain}"


def txt_record_value(token: str) -> str:
    return f"{TXT_VALUE_PREFIX}{token}"


def http_url(domain: str) -> str:
    return f"http://{domain}{HTTP_PATH}"
