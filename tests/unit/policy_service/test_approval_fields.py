"""The Approval message, the server's conversion into it and the client's view of it name
the same fields (wire_enums.APPROVAL_FIELDS): a field added on one side only fails here."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from policy_service.api import convert
from policy_service.approvals.store import ApprovalRecord
from policy_service.storage.models import Approval
from policy_service.wire_enums import APPROVAL_FIELDS
from policy_service.wire_views import ApprovalView, approval_view

# The view's own derived fields, not in the message.
_VIEW_ONLY = {"expires_unix"}


def _full_record() -> ApprovalRecord:
    """A record with every column the conversion reads set to something other than its default."""
    now = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
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
        created_at=now,
        expires_at=now + timedelta(hours=1),
        decided_at=now + timedelta(minutes=1),
        consumed_by_call_id="c1",
        required_approvals=2,
        approvals_count=2,
        policy_json="",
        window_until=now + timedelta(hours=2),
    )
    return ApprovalRecord(row, "acme", "acme", "bank", notified=("slack approvals",))


def test_the_conversion_sets_every_field_of_the_message() -> None:
    message = convert.approval(_full_record())
    assert {field.name for field, _ in message.ListFields()} == set(APPROVAL_FIELDS)


def test_the_view_carries_every_field_of_the_message_and_reads_each() -> None:
    names = {field.name for field in dataclasses.fields(ApprovalView)}
    assert names - _VIEW_ONLY == set(APPROVAL_FIELDS)
    view = approval_view(convert.approval(_full_record()))
    empty = [name for name in APPROVAL_FIELDS if getattr(view, name) in ("", 0, None, ())]
    assert empty == []
    assert view.window_until == "2026-11-26T05:00:00Z" and view.approvals_so_far == 2 and view.status == "approved"
