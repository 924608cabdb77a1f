"""Domain rows → protobuf messages."""

from __future__ import annotations

import json
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from policy_service._generated.monomcp.policy.v1 import admin_pb2, types_pb2
from policy_service.approvals.policies import Frozen, scope
from policy_service.approvals.store import ApprovalRecord
from policy_service.audit.query import AuditEntry
from policy_service.identity.principal import Principal
from policy_service.permissions.catalogue import ToolkitView
from policy_service.permissions.items import ItemsView
from policy_service.wire_enums import APPROVAL_STATUS_NAMES, APPROVAL_STATUSES, PERMISSION_NAMES, PERMISSIONS

PERMISSION_TO_PB = PERMISSIONS
PERMISSION_FROM_PB = PERMISSION_NAMES
APPROVAL_STATUS_TO_PB = APPROVAL_STATUSES
APPROVAL_STATUS_FROM_PB = APPROVAL_STATUS_NAMES


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def backend(view: ToolkitView | ItemsView) -> types_pb2.Backend:
    """Where an allowed call runs: only ever sent to a service identity that may execute."""
    return fill_backend(types_pb2.Backend(), view)


def fill_backend(message: types_pb2.Backend, view: ToolkitView | ItemsView) -> types_pb2.Backend:
    message.url = view.backend_url
    message.headers.update(view.backend_headers)
    message.timeout_seconds = view.backend_timeout_seconds
    return message


def principal(p: Principal) -> types_pb2.Principal:
    return fill_principal(types_pb2.Principal(), p)


def fill_principal(message: types_pb2.Principal, p: Principal) -> types_pb2.Principal:
    """Writes `p` into a message in place (a field of the response: no copy on the hot path)."""
    message.kind, message.id, message.org_slug, message.role, message.display = (
        p.kind,
        p.id,
        p.org_slug,
        p.role,
        p.display,
    )
    return message


def approval(record: ApprovalRecord) -> types_pb2.Approval:
    row = record.row
    return types_pb2.Approval(
        id=row.id,
        status=APPROVAL_STATUS_TO_PB[row.status],
        org_slug=record.org_slug,
        toolkit_org_slug=record.toolkit_org_slug,
        toolkit_slug=record.toolkit_slug,
        tool=row.tool,
        arguments_json=record.shown_arguments or row.arguments_json,
        arguments_sha256=row.arguments_sha256,
        requester=types_pb2.Principal(
            kind=row.principal_kind,
            id=row.principal_id,
            org_slug=record.org_slug,
            role=row.principal_role,
            display=row.principal_display,
        ),
        reason=row.reason,
        decided_by=row.decided_by,
        created_at=ts(row.created_at),
        expires_at=ts(row.expires_at),
        decided_at=ts(row.decided_at),
        consumed_by_call_id=row.consumed_by_call_id,
        required_approvals=row.required_approvals,
        approvals_so_far=row.approvals_count,
        scope=scope(Frozen.from_json(row.policy_json)),
        window_until=ts(row.window_until),
        notified=list(record.notified),
    )


def audit_record(entry: AuditEntry) -> admin_pb2.AuditRecord:
    """One record per request: the call row, with its completion (if any) folded in."""
    row, done = entry.row, entry.completion
    paths = json.loads(row.redacted_paths or "[]") + (json.loads(done.redacted_paths or "[]") if done else [])
    return admin_pb2.AuditRecord(
        call_id=row.call_id,
        seq=row.seq,
        source=row.source,
        org_slug=row.org_slug,
        toolkit_org_slug=row.toolkit_org_slug,
        toolkit_slug=row.toolkit_slug,
        tool=row.tool,
        method=row.method,
        actor_type=row.actor_type,
        actor_id=row.actor_id,
        actor_display=row.actor_display,
        permission=PERMISSION_TO_PB.get(row.permission, types_pb2.PERMISSION_UNSPECIFIED),
        decision=row.decision,
        approval_id=row.approval_id,
        request_json=row.request_payload,
        response_json=done.response_payload if done else row.response_payload,
        redacted_paths=paths,
        status=done.status if done else row.status,
        error=done.error if done else row.error,
        duration_ms=done.duration_ms if done else row.duration_ms,
        client_address=row.client_address,
        user_agent=row.user_agent,
        request_id=row.request_id,
        created_at=ts(row.created_at),
        completed_at=ts(done.completed_at if done else row.completed_at),
        rule=row.rule,
    )
