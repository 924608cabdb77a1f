"""How an approval task's state reads to a 2025-11-25 client: the status the policy
service's facts imply, and what tasks/result returns once it ended."""

from __future__ import annotations

import json

import pytest
from mcp.shared.exceptions import MCPError

from mcp_front.mcp import task_state
from policy_service.client import APPROVAL_STATUSES, Approval, TaskState
from policy_service.wire_views import TaskView, task_view

URL = "https://gw.example"


def _state(approval: str, **fields: object) -> TaskView:
    state = TaskState(
        task_id="t1",
        status=str(fields.pop("status", "live")),
        approval=Approval(id="a1", status=APPROVAL_STATUSES[approval], tool="transfer", consumed_by_call_id="c1"),
        **fields,  # type: ignore[arg-type]
    )
    state.created_at.FromSeconds(1_000)
    state.updated_at.FromSeconds(1_000)
    state.expires_at.FromSeconds(4_600)
    return task_view(state)


@pytest.mark.parametrize(
    "approval, fields, expected",
    [
        ("pending", {}, "working"),
        ("approved", {}, "working"),
        ("consumed", {}, "working"),  # running: no completion yet
        ("consumed", {"result_status": "ok", "result_call_id": "c1"}, "working"),  # kept, completion not durable
        ("consumed", {"result_status": "ok", "result_call_id": "c1", "consumer_status": "ok"}, "completed"),
        (
            "consumed",
            {"result_status": "tool_error", "result_call_id": "c1", "consumer_status": "tool_error"},
            "failed",
        ),
        ("consumed", {"consumer_status": "ok"}, "failed"),  # another call got the result
        ("consumed", {"consumer_status": "abandoned"}, "failed"),
        ("approved", {"result_status": "refused"}, "failed"),
        ("denied", {}, "failed"),
        ("expired", {}, "failed"),
        ("denied", {"status": "cancelled"}, "cancelled"),
    ],
)
def test_status_follows_the_approval_and_the_kept_result(approval: str, fields: dict[str, str], expected: str) -> None:
    assert task_state.status_of(_state(approval, **fields), URL).status == expected


def test_only_an_approved_task_without_a_result_is_runnable() -> None:
    assert task_state.runnable(_state("approved"))
    assert not task_state.runnable(_state("approved", result_status="refused"))
    assert not task_state.runnable(_state("pending")) and not task_state.runnable(_state("consumed"))


def test_the_task_object_carries_its_ttl_and_poll_interval() -> None:
    task = task_state.task_object("id-1", _state("pending"), URL)
    assert task["taskId"] == "id-1" and task["status"] == "working" and task["ttl"] == 3_600_000
    assert URL in task["statusMessage"] and task["pollInterval"] == task_state.POLL_INTERVAL_MS


def test_the_payload_is_the_kept_result_with_its_related_task() -> None:
    kept = {"content": [{"type": "text", "text": "sent"}], "isError": False, "_meta": {"backend": 1}}
    state = _state(
        "consumed", result_status="ok", result_call_id="c1", consumer_status="ok", result_json=json.dumps(kept)
    )
    payload = task_state.payload("id-1", state, URL)
    assert payload["content"] == kept["content"] and payload["_meta"]["backend"] == 1
    assert payload["_meta"][task_state.RELATED_TASK] == {"taskId": "id-1"}


def test_a_kept_backend_error_is_raised_with_its_code() -> None:
    kept = {"error": {"code": -32050, "message": "backend says no"}}
    state = _state(
        "consumed",
        result_status="backend_error",
        result_call_id="c1",
        consumer_status="backend_error",
        result_json=json.dumps(kept),
    )
    with pytest.raises(MCPError) as raised:
        task_state.payload("id-1", state, URL)
    assert raised.value.error.code == -32050


def test_a_cancelled_task_says_nothing_ran() -> None:
    payload = task_state.payload("id-1", _state("denied", status="cancelled"), URL)
    assert payload["isError"] and payload["_meta"]["monomcp/executed"] is False
