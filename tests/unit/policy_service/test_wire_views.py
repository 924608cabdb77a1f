"""The typed views callers read instead of protobuf: unset timestamps are None (not the epoch),
status numbers are words, and a task's times and lifetime read as the 2025-11-25 Task says."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from policy_service._generated.monomcp.policy.v1 import admin_pb2, policy_pb2, tasks_pb2, types_pb2
from policy_service.client import APPROVAL_STATUSES, Approval, TaskState
from policy_service.wire_views import (
    ApprovalView,
    api_key_view,
    approval_of,
    approval_view,
    has_approval,
    moment,
    principal_view,
    session_max_age,
    task_page,
    task_view,
)


def _approval(status: str = "pending", **fields: object) -> Approval:
    return Approval(id="a1", status=APPROVAL_STATUSES[status], tool="transfer", **fields)  # type: ignore[arg-type]


def test_an_approval_reads_as_words_and_iso_times_with_unset_times_none() -> None:
    message = _approval("denied", reason="no", notified=["slack"])
    message.requester.display = "bob@example.com"
    message.created_at.FromSeconds(1_700_000_000)
    view = approval_view(message)
    assert isinstance(view, ApprovalView) and view.status == "denied" and view.reason == "no"
    assert view.requester.display == "bob@example.com" and view.notified == ("slack",)
    assert view.created_at == "2023-11-14T22:13:20Z"
    assert view.expires_at is None and view.expires_unix == 0  # unset: not "1970-01-01T00:00:00Z"


def test_a_status_number_this_build_does_not_know_reads_empty() -> None:
    assert approval_view(Approval(id="a1", status=types_pb2.APPROVAL_STATUS_UNSPECIFIED)).status == ""
    assert approval_view(Approval(id="a1", status=99)).status == ""  # type: ignore[arg-type]


def test_a_decision_without_an_approval_has_none() -> None:
    plain = policy_pb2.AuthorizeToolCallResponse(decision=policy_pb2.DECISION_ALLOW, call_id="c1")
    assert not has_approval(plain) and approval_of(plain) is None
    consumed = policy_pb2.AuthorizeToolCallResponse(approval=_approval("consumed"))
    view = approval_of(consumed)
    assert has_approval(consumed) and view is not None and view.status == "consumed" and view.id == "a1"


def test_a_task_is_last_updated_when_its_approval_was_decided_if_later() -> None:
    state = TaskState(task_id="t1", status="live", approval=_approval("approved"))
    state.created_at.FromSeconds(1_000)
    state.updated_at.FromSeconds(1_500)
    state.expires_at.FromSeconds(4_600)
    state.approval.decided_at.FromSeconds(2_000)
    view = task_view(state)
    assert view.created_at == "1970-01-01T00:16:40Z" and view.last_updated_at == "1970-01-01T00:33:20Z"
    assert view.ttl_ms == 3_600_000 and view.expires_unix == 4_600 and view.approval.status == "approved"
    state.approval.decided_at.FromSeconds(1_200)  # decided before the task's own last change
    assert task_view(state).last_updated_at == "1970-01-01T00:25:00Z"
    page = task_page(tasks_pb2.ListTasksResponse(tasks=[state], next_cursor="next"))
    assert [t.task_id for t in page.tasks] == ["t1"] and page.next_cursor == "next"


def test_a_key_lists_never_for_unset_times_and_revoked_from_its_revocation() -> None:
    key = admin_pb2.ApiKey(id="k1", name="ci", role="member", owner_email="o@example.com")
    key.created_at.FromSeconds(1_000)
    view = api_key_view(key)
    assert view.created_at == "1970-01-01T00:16:40Z" and view.expires_at is None and view.last_used_at is None
    assert not view.revoked and view.owner_email == "o@example.com"
    key.revoked_at.FromSeconds(2_000)
    assert api_key_view(key).revoked


def test_a_principal_view_keeps_who_the_caller_is() -> None:
    me = principal_view(types_pb2.Principal(kind="user", id="u1", org_slug="acme", display="a@b"))
    assert (me.kind, me.org_slug, me.role, me.display) == ("user", "acme", "", "a@b")


def test_moment_reads_every_shape_a_page_holds_and_unset_is_none() -> None:
    at = datetime(2026, 11, 25, 17, 40, 0, 123456, tzinfo=UTC)
    stamp = Timestamp()
    stamp.FromDatetime(at)
    assert moment(stamp) == at and moment(stamp.ToJsonString()) == at and moment(at) == at
    assert moment(Timestamp()) is None and moment(None) is None and moment("") is None


def test_a_session_cookie_lives_until_the_session_expires_and_at_least_a_second() -> None:
    issued = admin_pb2.CreateConsoleSessionResponse(token="t")
    issued.expires_at.FromDatetime(datetime.now(UTC).replace(microsecond=0))
    assert session_max_age(issued) == 1  # already due: still a positive max-age
    issued.expires_at.FromSeconds(int(datetime.now(UTC).timestamp()) + 3_600)
    assert 3_590 <= session_max_age(issued) <= 3_600
