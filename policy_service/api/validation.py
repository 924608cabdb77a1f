"""Checks on admin RPC inputs that the database would otherwise reject as an internal
error: control characters (Postgres refuses NUL in text), unbounded lengths, TTLs that
overflow a datetime, malformed page tokens and timestamps. Each answers INVALID_ARGUMENT
with a message that names the field."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from policy_service.errors import InvalidArgument

# Longest a key may live when it expires at all: ten years.
MAX_TTL_SECONDS = 10 * 365 * 86_400
_BREAKS = frozenset("\t\n\r")
_MAX_INT64 = 2**63 - 1


def text(value: str, field: str, max_length: int = 200, multiline: bool = False) -> str:
    """`value` if it is at most `max_length` characters with no control characters."""
    if len(value) > max_length:
        raise InvalidArgument(f"{field} is longer than {max_length} characters", "BAD_LENGTH")
    if any(unicodedata.category(c) == "Cc" and not (multiline and c in _BREAKS) for c in value):
        raise InvalidArgument(f"{field} must not contain control characters", "BAD_TEXT")
    return value


def ttl_seconds(value: int) -> int:
    if not 0 <= value <= MAX_TTL_SECONDS:
        raise InvalidArgument(f"ttl_seconds must be between 0 and {MAX_TTL_SECONDS}", "BAD_TTL")
    return value


def audit_page_token(token: str) -> str:
    """The audit cursor is a row sequence number: decimal digits within int64."""
    if token and not (token.isascii() and token.isdigit() and len(token) <= 19 and int(token) <= _MAX_INT64):
        raise InvalidArgument("bad page_token", "BAD_PAGE_TOKEN")
    return token


def approval_cursor(token: str) -> tuple[datetime, str] | None:
    """The approvals cursor `<created_at ISO 8601 with offset>|<approval id>`, parsed."""
    if not token:
        return None
    text(token, "page_token")
    stamp, _, ident = token.partition("|")
    try:
        created = datetime.fromisoformat(stamp)
        if created.tzinfo is None or not ident:
            raise ValueError("naive timestamp or no id")
        return created.astimezone(UTC), ident
    except (ValueError, OverflowError):
        raise InvalidArgument("bad page_token", "BAD_PAGE_TOKEN") from None


def timestamp(value: Timestamp, field: str) -> datetime:
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(f"{field} is out of range", "BAD_TIMESTAMP") from None
