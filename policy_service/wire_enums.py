"""Names ↔ protobuf enum values, shared by the servicers and the typed client."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from policy_service._generated.monomcp.policy.v1 import types_pb2


class Permission(StrEnum):
    """What a rule or a toolkit's default says of a tool, in the words the API, policy files
    and database use. Callers of the client read permissions as these (`permission_of`)."""

    ALWAYS_ALLOW = "always_allow"
    NEEDS_APPROVAL = "needs_approval"
    BLOCKED = "blocked"

    @property
    def words(self) -> str:
        """As people read it: `needs approval`."""
        return self.value.replace("_", " ")


PERMISSIONS = {
    Permission.ALWAYS_ALLOW.value: types_pb2.PERMISSION_ALWAYS_ALLOW,
    Permission.NEEDS_APPROVAL.value: types_pb2.PERMISSION_NEEDS_APPROVAL,
    Permission.BLOCKED.value: types_pb2.PERMISSION_BLOCKED,
}
PERMISSION_NAMES = {v: k for k, v in PERMISSIONS.items()}
_PERMISSION_OF: dict[int, Permission] = {int(number): Permission(name) for number, name in PERMISSION_NAMES.items()}


def permission_of(number: int) -> Permission | None:
    """A permission number from the wire; None when unset or a value this build does not know."""
    return _PERMISSION_OF.get(number)


APPROVAL_STATUSES = {
    "pending": types_pb2.APPROVAL_STATUS_PENDING,
    "approved": types_pb2.APPROVAL_STATUS_APPROVED,
    "denied": types_pb2.APPROVAL_STATUS_DENIED,
    "expired": types_pb2.APPROVAL_STATUS_EXPIRED,
    "consumed": types_pb2.APPROVAL_STATUS_CONSUMED,
}
APPROVAL_STATUS_NAMES = {v: k for k, v in APPROVAL_STATUSES.items()}
# An audit record's `source`: "mcp" for client calls, else the channel of an admin action.
AUDIT_SOURCES = ("mcp", "api", "console", "cli", "grpc", "system")


def _word(enum: EnumDescriptor, number: int) -> str:
    """`APPROVAL_STATUS_PENDING` → `pending`; the UNSPECIFIED value → ''."""
    value = enum.values_by_number.get(number)
    if value is None:
        return str(number)
    prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
    name = value.name.removeprefix(prefix)
    return "" if name == "UNSPECIFIED" else name.lower()


def _plain(field: FieldDescriptor, value: Any) -> Any:
    if field.enum_type is not None:
        return _word(field.enum_type, value)
    kind = field.message_type
    if kind is not None:
        if kind.full_name == "google.protobuf.Timestamp":
            return value.ToJsonString()
        return message_to_dict(value)
    return value


def message_to_dict(message: Message) -> dict[str, Any]:
    """A message as JSON people and scripts read: status words (not enum names), 64-bit
    integers as numbers, timestamps as RFC 3339, unset fields left out (as MessageToDict)."""
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            out[field.name] = {k: _plain(field.message_type.fields_by_name["value"], v) for k, v in value.items()}
        elif field.is_repeated:
            out[field.name] = [_plain(field, v) for v in value]
        else:
            out[field.name] = _plain(field, value)
    return out
