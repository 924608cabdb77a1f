"""Plain typed views of the policy client's messages, for callers that build answers from them.

Callers (the front, the console) read approvals, tasks, principals and keys through these
frozen dataclasses: status words instead of enum numbers, timestamps as RFC 3339 strings
(None when unset) instead of `HasField`/`ToJsonString`, so no caller learns protobuf's
presence rules. The hot path never converts: a decision is read as it comes from the
client, and `approval_of` runs only when a pending, denied or task answer is being built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.descriptor import Descriptor
from google.protobuf.timestamp_pb2 import Timestamp

from policy_service._generated.monomcp.policy.v1 import admin_pb2, policy_pb2, tasks_pb2, types_pb2
from policy_service.wire_enums import APPROVAL_STATUS_NAMES, Permission, permission_of


def _iso(stamp: Timestamp, is_set: bool) -> str | None:
    """A Timestamp field as RFC 3339; None when the message leaves it unset."""
    return stamp.ToJsonString() if is_set else None


def moment(value: Timestamp | datetime | str | None) -> datetime | None:
    """A point in time as an aware datetime; None for nothing or an unset (zero) Timestamp."""
    if value is None or value == "":
        return None
    if isinstance(value, Timestamp):
        return value.ToDatetime(tzinfo=UTC) if value.seconds or value.nanos else None
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def session_max_age(issued: admin_pb2.CreateConsoleSessionResponse) -> int:
    """A new console session's cookie lifetime: seconds until the session expires, at least 1."""
    lifetime = issued.expires_at.ToDatetime(tzinfo=UTC) - datetime.now(UTC)
    return max(int(lifetime.total_seconds()), 1)


@dataclass(frozen=True, slots=True)
class PrincipalView:
    """Who a credential is: kind "api_key", "user" or "operator"; org '' for the operator."""

    kind: str
    id: str
    org_slug: str
    role: str
    display: str


def principal_view(principal: types_pb2.Principal) -> PrincipalView:
    return PrincipalView(principal.kind, principal.id, principal.org_slug, principal.role, principal.display)


@dataclass(frozen=True, slots=True)
class ApprovalView:
    """An approval as its requester sees it. `status` is a word (pending, approved, denied,
    expired, consumed), '' for a value this build does not know."""

    id: str
    status: str
    org_slug: str
    toolkit_org_slug: str
    toolkit_slug: str
    tool: str
    arguments_json: str
    arguments_sha256: str
    requester: PrincipalView
    reason: str
    decided_by: str
    consumed_by_call_id: str
    notified: tuple[str, ...]
    scope: str  # the grant's scope (see types.proto)
    approvals_so_far: int
    required_approvals: int
    created_at: str | None
    expires_at: str | None
    decided_at: str | None
    window_until: str | None  # a window grant: until when the principal's matching calls are allowed
    expires_unix: int  # seconds since the epoch (0 when unset): when signed state bound to it lapses


def _copied(message: Descriptor) -> tuple[str, ...]:
    """A message's fields a view copies as they are: not enums, messages (principals,
    timestamps) or repeated fields, which its view function converts."""
    return tuple(
        field.name
        for field in message.fields
        if field.message_type is None and field.enum_type is None and not field.is_repeated
    )


_APPROVAL_COPIED = _copied(types_pb2.Approval.DESCRIPTOR)


def approval_view(approval: types_pb2.Approval) -> ApprovalView:
    return ApprovalView(
        **{name: getattr(approval, name) for name in _APPROVAL_COPIED},
        status=APPROVAL_STATUS_NAMES.get(approval.status, ""),
        requester=principal_view(approval.requester),
        notified=tuple(approval.notified),
        created_at=_iso(approval.created_at, approval.HasField("created_at")),
        expires_at=_iso(approval.expires_at, approval.HasField("expires_at")),
        decided_at=_iso(approval.decided_at, approval.HasField("decided_at")),
        window_until=_iso(approval.window_until, approval.HasField("window_until")),
        expires_unix=approval.expires_at.seconds,
    )


def has_approval(decision: policy_pb2.AuthorizeToolCallResponse) -> bool:
    """The decision concerns an approval (a call that consumed one, or one pending or refused).
    Cheap: the allowed path asks it on every call."""
    return decision.HasField("approval")


def approval_of(decision: policy_pb2.AuthorizeToolCallResponse) -> ApprovalView | None:
    """The decision's approval as a view, None when it has none."""
    return approval_view(decision.approval) if decision.HasField("approval") else None


@dataclass(frozen=True, slots=True)
class TaskView:
    """An approval task (2025-11-25) as the policy service keeps it; see tasks.proto."""

    task_id: str
    status: str  # live | cancelled
    approval: ApprovalView
    created_at: str
    last_updated_at: str  # the later of the task's own update and the approval's decision
    ttl_ms: int
    expires_unix: int
    result_status: str
    result_json: str
    result_call_id: str
    consumer_status: str


def task_view(state: tasks_pb2.TaskState) -> TaskView:
    updated = state.updated_at
    decided = state.approval.decided_at
    if state.approval.HasField("decided_at") and decided.ToDatetime() > updated.ToDatetime():
        updated = decided
    return TaskView(
        task_id=state.task_id,
        status=state.status,
        approval=approval_view(state.approval),
        created_at=state.created_at.ToJsonString(),
        last_updated_at=updated.ToJsonString(),
        ttl_ms=state.expires_at.ToMilliseconds() - state.created_at.ToMilliseconds(),
        expires_unix=state.expires_at.seconds,
        result_status=state.result_status,
        result_json=state.result_json,
        result_call_id=state.result_call_id,
        consumer_status=state.consumer_status,
    )


@dataclass(frozen=True, slots=True)
class TaskPage:
    tasks: tuple[TaskView, ...]
    next_cursor: str


def task_page(page: tasks_pb2.ListTasksResponse) -> TaskPage:
    return TaskPage(tuple(task_view(s) for s in page.tasks), page.next_cursor)


@dataclass(frozen=True, slots=True)
class ApiKeyView:
    """An API key as the console lists it (never its secret)."""

    id: str
    name: str
    role: str
    owner_email: str
    created_at: str | None
    expires_at: str | None
    last_used_at: str | None
    revoked: bool


def api_key_view(key: admin_pb2.ApiKey) -> ApiKeyView:
    return ApiKeyView(
        id=key.id,
        name=key.name,
        role=key.role,
        owner_email=key.owner_email,
        created_at=_iso(key.created_at, key.HasField("created_at")),
        expires_at=_iso(key.expires_at, key.HasField("expires_at")),
        last_used_at=_iso(key.last_used_at, key.HasField("last_used_at")),
        revoked=key.HasField("revoked_at"),
    )


@dataclass(frozen=True, slots=True)
class AuditRecordView:
    """One audited request as the console shows it (admin.proto's AuditRecord): the
    permission that applied as a `Permission` (None when none did), times as RFC 3339."""

    call_id: str
    seq: int
    source: str
    org_slug: str
    toolkit_org_slug: str
    toolkit_slug: str
    tool: str
    method: str
    actor_type: str
    actor_id: str
    actor_display: str
    permission: Permission | None
    decision: str
    approval_id: str
    request_json: str
    response_json: str
    redacted_paths: tuple[str, ...]
    status: str
    error: str
    duration_ms: float
    client_address: str
    user_agent: str
    request_id: str
    created_at: str | None
    completed_at: str | None
    rule: str


_AUDIT_COPIED = _copied(admin_pb2.AuditRecord.DESCRIPTOR)


def audit_record_view(record: admin_pb2.AuditRecord) -> AuditRecordView:
    return AuditRecordView(
        **{name: getattr(record, name) for name in _AUDIT_COPIED},
        permission=permission_of(record.permission),
        redacted_paths=tuple(record.redacted_paths),
        created_at=_iso(record.created_at, record.HasField("created_at")),
        completed_at=_iso(record.completed_at, record.HasField("completed_at")),
    )
