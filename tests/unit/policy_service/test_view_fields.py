"""A plain view and the message it is read from name the same fields, and the server's
conversion fills each of them: a field added on one side only fails here. The message
(protos/, its descriptor) is the one list both sides follow."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.descriptor import Descriptor

from policy_service._generated.monomcp.policy.v1 import admin_pb2, types_pb2
from policy_service.api import convert
from policy_service.approvals.store import ApprovalRecord
from policy_service.storage.models import Approval
from policy_service.wire_views import ApprovalView, AuditRecordView, approval_view, audit_record_view

_NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def _names(message: Descriptor) -> set[str]:
    return {field.name for field in message.fields}


def _full_approval() -> ApprovalRecord:
    """A record with every column the conversion reads set to something other than its default."""
    row = Approval(
        id="a1",
        principal_kind="api_key",
        principal_id="k1",
        principal_display="ci",
        principal_role="member",
        tool="transfer",
        arguments_json='{"amount":5}',
        arguments_sha256="ab" * 32,
        status="approved",
        reason="ok",
        decided_by="admin@example.com",
        created_at=_NOW,
        expires_at=_NOW + timedelta(hours=1),
        decided_at=_NOW + timedelta(minutes=1),
        consumed_by_call_id="c1",
        required_approvals=2,
        approvals_count=2,
        policy_json="",
        window_until=_NOW + timedelta(hours=2),
    )
    return ApprovalRecord(row, "acme", "acme", "bank", notified=("slack approvals",))


def test_the_approval_conversion_sets_every_field_of_the_message() -> None:
    message = convert.approval(_full_approval())
    assert {field.name for field, _ in message.ListFields()} == _names(types_pb2.Approval.DESCRIPTOR)


def test_the_approval_view_carries_every_field_of_the_message_and_reads_each() -> None:
    fields = _names(types_pb2.Approval.DESCRIPTOR)
    assert {field.name for field in dataclasses.fields(ApprovalView)} - {"expires_unix"} == fields
    view = approval_view(convert.approval(_full_approval()))
    assert [name for name in sorted(fields) if getattr(view, name) in ("", 0, None, ())] == []
    assert view.window_until == "2026-11-26T05:00:00Z" and view.approvals_so_far == 2 and view.status == "approved"


def test_the_audit_view_carries_every_field_of_the_message_and_reads_each() -> None:
    fields = _names(admin_pb2.AuditRecord.DESCRIPTOR)
    assert {field.name for field in dataclasses.fields(AuditRecordView)} == fields
    strings: dict[str, Any] = {
        f.name: f"{f.name}-value"
        for f in admin_pb2.AuditRecord.DESCRIPTOR.fields
        if f.type == f.TYPE_STRING and not f.is_repeated
    }
    record = admin_pb2.AuditRecord(
        **strings,
        seq=7,
        permission=types_pb2.PERMISSION_NEEDS_APPROVAL,
        redacted_paths=["arguments.password"],
        duration_ms=1.5,
    )
    record.created_at.FromDatetime(_NOW)
    record.completed_at.FromDatetime(_NOW + timedelta(seconds=1))
    view = audit_record_view(record)
    assert [name for name in sorted(fields) if getattr(view, name) in ("", 0, None, ())] == []
    assert view.permission == "needs_approval" and view.redacted_paths == ("arguments.password",)
    assert view.completed_at == "2026-11-26T03:00:01Z" and view.rule == "rule-value"


def test_an_audit_view_leaves_what_did_not_apply_empty() -> None:
    view = audit_record_view(admin_pb2.AuditRecord(call_id="c1", status="started"))
    assert view.permission is None and view.completed_at is None and view.created_at is None
