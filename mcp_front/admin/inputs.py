"""Bounded input types for the REST API and console forms.

Everything a caller sends is checked here, before any RPC: integers within what the
policy service's fields hold, strings of bounded length without control characters
(a NUL would otherwise reach the database and fail there), timestamps a protobuf
Timestamp can carry. Bad input answers 422 with a message that names the problem.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from policy_service.client import APPROVAL_STATUSES
from policy_service.wire_enums import AUDIT_SOURCES

# Longest a key may live when it expires at all: ten years.
MAX_TTL_SECONDS = 10 * 365 * 86_400
MAX_PAGE_SIZE = 500
_NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"
_TEXT_LINE_BREAKS = frozenset("\t\n\r")
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def _no_control(value: str) -> str:
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("control characters (such as NUL) are not allowed")
    return value


def _no_control_but_breaks(value: str) -> str:
    if any(unicodedata.category(c) == "Cc" and c not in _TEXT_LINE_BREAKS for c in value):
        raise ValueError("control characters other than tab and line breaks are not allowed")
    return value


def _in_timestamp_range(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        utc = aware.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None
    if not _EARLIEST <= utc < _LATEST:
        raise ValueError("timestamp must be between 1970 and 9999")
    return utc


def _line(max_length: int, min_length: int = 0) -> object:
    return Field(min_length=min_length, max_length=max_length, json_schema_extra={"pattern": _NO_CONTROL})


# One-line strings: names, ids, slugs, filters, page tokens.
Ident = Annotated[str, _line(128), AfterValidator(_no_control)]
Name = Annotated[str, _line(200, 1), AfterValidator(_no_control)]
PageToken = Annotated[str, _line(200), AfterValidator(_no_control)]
# Free text typed by a person (a denial reason): line breaks allowed.
Prose = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_no_control_but_breaks)]
OptionalProse = Annotated[str, Field(max_length=2000), AfterValidator(_no_control_but_breaks)]
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)]
TtlSeconds = Annotated[int, Field(ge=0, le=MAX_TTL_SECONDS, description="0 = never expires")]
Timestamp = Annotated[datetime | None, AfterValidator(_in_timestamp_range)]
ApprovalStatus = Literal["", "pending", "approved", "denied", "expired", "consumed"]
# Where an audit record came from: MCP client calls, an admin action's channel, or the system itself.
AuditSource = Literal["", "mcp", "api", "console", "cli", "grpc", "system"]

if set(APPROVAL_STATUSES) != set(ApprovalStatus.__args__) - {""}:  # type: ignore[attr-defined]
    raise RuntimeError("ApprovalStatus is out of step with the policy service's statuses")
if set(AUDIT_SOURCES) != set(AuditSource.__args__) - {""}:  # type: ignore[attr-defined]
    raise RuntimeError("AuditSource is out of step with the policy service's audit sources")
