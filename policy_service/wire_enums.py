"""Names ↔ protobuf enum values, shared by the servicers and the typed client."""

from __future__ import annotations

from policy_service._generated.monomcp.policy.v1 import types_pb2

PERMISSIONS = {
    "always_allow": types_pb2.PERMISSION_ALWAYS_ALLOW,
    "needs_approval": types_pb2.PERMISSION_NEEDS_APPROVAL,
    "blocked": types_pb2.PERMISSION_BLOCKED,
}
PERMISSION_NAMES = {v: k for k, v in PERMISSIONS.items()}
APPROVAL_STATUSES = {
    "pending": types_pb2.APPROVAL_STATUS_PENDING,
    "approved": types_pb2.APPROVAL_STATUS_APPROVED,
    "denied": types_pb2.APPROVAL_STATUS_DENIED,
    "expired": types_pb2.APPROVAL_STATUS_EXPIRED,
    "consumed": types_pb2.APPROVAL_STATUS_CONSUMED,
}
APPROVAL_STATUS_NAMES = {v: k for k, v in APPROVAL_STATUSES.items()}
